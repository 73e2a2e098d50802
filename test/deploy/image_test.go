//go:build image

package deploy

// Built only with -tags image (`make image-test`): building the image takes
// a minute or two of compiling, too long for every `make test`.

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// TestImage builds the OCI image with deploy/image/build.sh (buildah, FROM
// scratch, nothing pulled) and checks what it holds: a non-root user, the
// entrypoint, a static warden binary (no ELF interpreter, so it runs in an
// empty image), and that very binary, copied out of the image, answers
// /healthz. `podman run` of the image cannot run on the machine this was
// written on (crun: "cgroups in hybrid mode not supported", and setrlimit
// refused), so the binary is run on the host instead; on a machine where
// rootful podman works, run the image itself (docs/deployment.md).
func TestImage(t *testing.T) {
	for _, tool := range []string{"buildah", "podman"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: make image-test installs it (apt-get install buildah podman)", tool)
		}
	}
	image := "localhost/warden:test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	script := repoFile(t, "deploy/image/build.sh")
	if out, err := exec.Command(script, image).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", script, image, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("podman", "rmi", "-f", image).Run() })

	out, err := exec.Command("podman", "image", "inspect", image).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	var info []struct {
		Config struct {
			User       string   `json:"User"`
			Entrypoint []string `json:"Entrypoint"`
			Cmd        []string `json:"Cmd"`
		} `json:"Config"`
		RootFS struct {
			Layers []string `json:"Layers"`
		} `json:"RootFS"`
	}
	if err := json.Unmarshal(out, &info); err != nil || len(info) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	cfg := info[0].Config
	uid, _, _ := strings.Cut(cfg.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("image user %q: want a numeric non-root uid", cfg.User)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/warden" || len(cfg.Cmd) == 0 || cfg.Cmd[0] != "server" {
		t.Errorf("entrypoint %v cmd %v: want /warden server ...", cfg.Entrypoint, cfg.Cmd)
	}

	// Copy the binary out of the image.
	ctr, err := exec.Command("buildah", "from", image).Output()
	if err != nil {
		t.Fatalf("buildah from: %v", err)
	}
	name := strings.TrimSpace(string(ctr))
	t.Cleanup(func() { _ = exec.Command("buildah", "rm", name).Run() })
	mnt, err := exec.Command("buildah", "mount", name).Output()
	if err != nil {
		t.Fatalf("buildah mount: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "warden")
	if out, err := exec.Command("cp", filepath.Join(strings.TrimSpace(string(mnt)), "warden"), bin).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the image's warden has an ELF interpreter: not static, it cannot run FROM scratch")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the image's warden needs shared libraries %v", libs)
	}
	f.Close()

	ports := testutil.FreePorts(t, 3)
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	p := testutil.StartProcess(t, bin, []string{"server", "--node-id", "img", "--data-dir", t.TempDir(),
		"--http-addr", addr, "--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--gossip-addr", "127.0.0.1:" + strconv.Itoa(ports[2]), "--bootstrap-expect", "1"},
		// A lone node on loopback: the lab opt-out instead of a gossip key.
		[]string{"WARDEN_SECURITY_INSECURE_COORDINATOR_TRAFFIC=true"}, "")
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false, fmt.Sprintf("%v (running: %v)", err, p.Running())
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	t.Logf("image %s: user %s, entrypoint %v, %d layer(s); its static warden answers /healthz", image, cfg.User, cfg.Entrypoint, len(info[0].RootFS.Layers))
}
