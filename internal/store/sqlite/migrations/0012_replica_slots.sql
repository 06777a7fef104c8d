-- 0010: numbered slots leased by the replicas sharing this database, the
-- stable identity of their consumer sessions on an external MQTT broker
-- (store.ReplicaSlots). expires_at is Unix microseconds; a row whose lease
-- expired is vacant: its sessions wait for a replica to resume or drain them.
CREATE TABLE replica_slots (
    slot       INTEGER PRIMARY KEY,
    owner      TEXT NOT NULL,
    -- the sessions' client ids are "{client_base}-s{slot}-c{i}"
    client_base TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
