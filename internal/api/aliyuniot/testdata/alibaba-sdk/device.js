// A device on Alibaba's own Node device SDK (alibabacloud-iot-device-sdk)
// upgrading over Alink OTA: the SDK connects with its own signing code
// (securemode=3, signmethod=hmacsha1, user dn&pk); the SDK has no OTA helper,
// so the device subscribes to and publishes the /ota/device/* topics through
// the SDK's own subscribe/publish, as Alibaba's OTA docs describe.
//
// Config from the environment: BROKER_URL (mqtt://host:port), PRODUCT_KEY,
// DEVICE_NAME, DEVICE_SECRET, VERSION. One JSON line per event on stdout;
// exits 0 after the upgrade, 1 on any failure or after 60 s.
'use strict';
const crypto = require('crypto');
const http = require('http');
const https = require('https');
const iot = require('alibabacloud-iot-device-sdk');

const env = (k) => {
  if (!process.env[k]) { fail(`${k} is not set`); }
  return process.env[k];
};
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
function fail(msg) { out({ event: 'error', error: String(msg) }); process.exit(1); }
setTimeout(() => fail('no upgrade within 60 s'), 60000).unref();

const pk = env('PRODUCT_KEY'), dn = env('DEVICE_NAME');
let version = env('VERSION');
let ids = 0;
const nextId = () => String(++ids);

const device = iot.device({
  productKey: pk, deviceName: dn, deviceSecret: env('DEVICE_SECRET'),
  brokerUrl: env('BROKER_URL'),
});
const upgradeTopic = `/ota/device/upgrade/${pk}/${dn}`;
const send = (topic, params) => new Promise((resolve, reject) =>
  device.publish(topic, JSON.stringify({ id: nextId(), params }), { qos: 1 }, (err) => err ? reject(err) : resolve()));

let started = false;
device.on('connect', () => {
  out({ event: 'connected' });
  if (started) { return; }
  started = true;
  device.subscribe(upgradeTopic, { qos: 1 }, (err, granted) => {
    if (err || !granted || granted[0].qos > 2) { fail(`subscribe ${upgradeTopic}: ${err || JSON.stringify(granted)}`); }
    send(`/ota/device/inform/${pk}/${dn}`, { version })
      .then(() => out({ event: 'informed', version }))
      .catch(fail);
  });
});
device.on('error', (e) => fail(`mqtt error: ${e}`));

function download(url) {
  return new Promise((resolve, reject) => {
    (url.startsWith('https:') ? https : http).get(url, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`download answered ${res.statusCode}`)); res.resume(); return; }
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    }).on('error', reject);
  });
}

device.on('message', (topic, payload) => {
  if (topic !== upgradeTopic) { return; }
  let msg;
  try { msg = JSON.parse(payload.toString()); } catch (e) { fail(`notice is not JSON: ${payload}`); }
  out({ event: 'notice', notice: msg });
  if (msg.code !== '1000' || !msg.data) { fail(`unexpected notice ${payload}`); }
  const d = msg.data;
  const progress = (step, desc) => send(`/ota/device/progress/${pk}/${dn}`, { step: String(step), desc, module: d.module });
  (async () => {
    await progress(1, 'downloading');
    const body = await download(d.url);
    if (body.length !== d.size) { await progress(-2, `size ${body.length} != ${d.size}`); fail('size mismatch'); }
    const alg = { Md5: 'md5', MD5: 'md5', SHA256: 'sha256' }[d.signMethod];
    if (!alg) { await progress(-3, `signMethod ${d.signMethod}`); fail(`unknown signMethod ${d.signMethod}`); }
    const sum = crypto.createHash(alg).update(body).digest('hex');
    if (sum !== String(d.sign).toLowerCase()) { await progress(-3, 'sign mismatch'); fail(`${alg} ${sum} != sign ${d.sign}`); }
    if (d.md5 && crypto.createHash('md5').update(body).digest('hex') !== d.md5.toLowerCase()) { await progress(-3, 'md5 mismatch'); fail('md5 mismatch'); }
    await progress(50, 'verified');
    await progress(100, 'flashed');
    version = d.version;
    await send(`/ota/device/inform/${pk}/${dn}`, { version });
    out({ event: 'upgraded', version, bytes: body.length });
    device.end(false, () => process.exit(0));
  })().catch(fail);
});
