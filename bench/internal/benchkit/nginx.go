package benchkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Nginx is a private nginx serving a directory: the reference for
// downloads (sendfile on, access log off, one worker per core).
type Nginx struct {
	Cmd  *exec.Cmd
	Addr string
}

// LookNginx finds the nginx binary (see LookDaemon).
func LookNginx(bin string) (string, error) {
	if bin == "" {
		bin = "nginx"
	}
	p, err := LookDaemon(bin, "nginx-light")
	if err != nil {
		return "", fmt.Errorf("%w, or run bash bench/download.sh once", err)
	}
	return p, nil
}

// StartNginx serves root on a free loopback port, with its configuration,
// pid and temporary files under work. nginx's workers drop root to its
// default user: root and its files must be world-readable.
func StartNginx(bin, work, root string) (*Nginx, error) {
	bin, err := LookNginx(bin)
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(work, "nginx.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  server { listen %[2]s; root %[3]s; }
}
`, work, addr, root)), 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf, "-p", work)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx (%s): %w", bin, err)
	}
	n := &Nginx{Cmd: cmd, Addr: addr}
	if err := WaitTCP(addr, 10*time.Second); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// Pid is the master's process id (TreeCPUSeconds adds its workers).
func (n *Nginx) Pid() int { return n.Cmd.Process.Pid }

// Stop stops nginx with SIGTERM, not SIGKILL: the master then stops its
// workers, which a killed master leaves running (and serving) behind it.
func (n *Nginx) Stop() {
	if n == nil || n.Cmd.Process == nil {
		return
	}
	_ = n.Cmd.Process.Signal(syscall.SIGTERM)
	_ = n.Cmd.Wait()
}
