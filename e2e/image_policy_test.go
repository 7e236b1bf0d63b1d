package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// imagePolicyConfig: builder may build, commit, import, load and create
// but not tag, and only from the test image; tagger may tag too; fetcher
// may tag and let builds fetch from the network. @IMAGE@ is the test
// image.
const imagePolicyConfig = `
roles:
  builder:
    allow: [container.create, container.commit, image.build, image.import, image.load, image.pull]
    images:
      allow: ["@IMAGE@"]
  tagger:
    allow: [container.create, image.build, image.tag]
    images:
      allow: ["@IMAGE@"]
  fetcher:
    allow: [image.build, image.tag]
    builds:
      remote_sources: true
clients:
  - cn: builder-1
    role: builder
  - cn: tagger-1
    role: tagger
  - cn: fetcher-1
    role: fetcher
  - group: admins
    role: admin
`

// startImagePolicyEnv starts a gateway with imagePolicyConfig and a
// certificate for each of its clients.
func startImagePolicyEnv(t *testing.T) *policyEnv {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	cfg := strings.ReplaceAll(imagePolicyConfig, "@IMAGE@", dockertestImage)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnv(t, "--config", cfgPath)
	p := &policyEnv{gatewayEnv: g, certs: map[string]string{"admin": g.certDir}, daemon: newDaemonAPI(g.d.Host())}
	for _, name := range []string{"builder-1", "tagger-1", "fetcher-1"} {
		certDir := filepath.Join(dir, "certs", name)
		g.cli.run("issue", "client", name, "--out", certDir)
		p.certs[name] = certDir
	}
	return p
}

// dockertestImage is the image the private daemon has (dockertest.ImageName).
const dockertestImage = "dockgate-test/busybox:latest"

// send sends one request with a raw body through the gateway as client.
func (p *policyEnv) send(t *testing.T, client, method, target, contentType string, body []byte) *rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+p.addr+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	c := p.gatewayHTTP(t, client)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		// A cut stream is an answer too: the daemon got nothing whole.
		return &rawResponse{Body: err.Error()}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := &rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
	var m struct{ Message string }
	if json.Unmarshal(data, &m) == nil {
		r.Message = m.Message
	}
	return r
}

// imageExists asks the daemon whether it knows ref.
func (a *daemonAPI) imageExists(t *testing.T, ref string) bool {
	t.Helper()
	status, body := a.do(t, http.MethodGet, "/images/"+ref+"/json", nil)
	switch status {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("daemon image inspect %s: %d %s", ref, status, body)
	return false
}

// imagesLabelled lists the daemon's images with a label.
func (a *daemonAPI) imagesLabelled(t *testing.T, label string) []string {
	t.Helper()
	var images []struct{ ID string }
	a.getJSON(t, "/images/json?filters="+url.QueryEscape(`{"label":["`+label+`"]}`), &images)
	var ids []string
	for _, i := range images {
		ids = append(ids, i.ID)
	}
	return ids
}

// removeImage removes ref from the daemon, if it is there.
func (a *daemonAPI) removeImage(t testing.TB, ref string) {
	a.do(t, http.MethodDelete, "/images/"+ref+"?force=1", nil)
}

// buildContext is a tar of the given files, in order.
func buildContext(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTagWritesNeedImageTag: a role without image.tag names no tag
// through commit, build, import or load; the daemon has no such image
// afterwards. A role with image.tag builds the same tag.
func TestTagWritesNeedImageTag(t *testing.T) {
	p := startImagePolicyEnv(t)
	m := newMarker()
	repo := "e2e-tag/" + m
	status, body := p.daemon.do(t, http.MethodPost, "/containers/create", []byte(`{"Image":"`+dockertestImage+`","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`))
	if status != http.StatusCreated {
		t.Fatalf("daemon create: %d %s", status, body)
	}
	var c struct{ ID string }
	json.Unmarshal(body, &c)
	t.Cleanup(func() { p.daemon.removeContainer(t, c.ID) })
	dockerfile := "FROM " + dockertestImage + "\nLABEL dockgate.e2e.attempt=" + m + "\n"
	ctx := buildContext(t, [2]string{"Dockerfile", dockerfile})
	layer := buildContext(t, [2]string{"hello", m})

	cases := []struct {
		name, target, contentType string
		body                      []byte
		ref, field                string
	}{
		{"commit", "/v1.41/commit?container=" + c.ID + "&repo=" + repo + "&tag=commit", "application/json", nil, repo + ":commit", "query repo"},
		{"build", "/v1.41/build?t=" + repo + ":build", "application/x-tar", ctx, repo + ":build", "query t"},
		{"build, second t", "/v1.41/build?t=&t=" + repo + ":build2", "application/x-tar", ctx, repo + ":build2", "query t"},
		{"import", "/v1.41/images/create?fromSrc=-&repo=" + repo + "&tag=import", "application/x-tar", layer, repo + ":import", "query repo"},
		{"load", "/v1.41/images/load", "application/x-tar", ctx, "", "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				if tc.ref != "" {
					p.daemon.removeImage(t, tc.ref)
				}
			})
			r := p.send(t, "builder-1", http.MethodPost, tc.target, tc.contentType, tc.body)
			if r.Status != http.StatusForbidden || !strings.Contains(r.Message, "needs image.tag; allow it by adding image.tag to roles.builder.allow") {
				t.Errorf("answer %d %q, want 403 naming image.tag", r.Status, r.Message)
			}
			if tc.ref != "" && p.daemon.imageExists(t, tc.ref) {
				t.Errorf("THE DAEMON ACTED: %s exists", tc.ref)
			}
		})
	}
	if ids := p.daemon.imagesLabelled(t, markerLabel+"="+m); len(ids) != 0 {
		t.Errorf("THE DAEMON ACTED: images %v carry the attempt's label", ids)
	}
	t.Run("allowed with image.tag", func(t *testing.T) {
		ref := repo + ":tagger"
		t.Cleanup(func() { p.daemon.removeImage(t, ref) })
		r := p.send(t, "tagger-1", http.MethodPost, "/v1.41/build?t="+ref, "application/x-tar", ctx)
		if r.Status != http.StatusOK || strings.Contains(r.Body, `"error"`) {
			t.Fatalf("build as tagger: %d %s", r.Status, r.Body)
		}
		if !p.daemon.imageExists(t, ref) {
			t.Errorf("the daemon has no %s after the allowed build", ref)
		}
	})
}

// TestBuildRemoteSources: a Dockerfile's ADD of a URL makes dockerd
// fetch it from the host's network whatever networkmode says; the gateway
// refuses it unless the role has builds.remote_sources, and the server
// behind the URL is never asked.
func TestBuildRemoteSources(t *testing.T) {
	p := startImagePolicyEnv(t)
	var hits atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		io.WriteString(w, "host-only secret\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m := newMarker()
	dockerfile := "FROM " + dockertestImage + "\nADD http://" + ln.Addr().String() + "/secret /secret\nLABEL " + markerLabel + "=" + m + "\n"
	ctx := buildContext(t, [2]string{"Dockerfile", dockerfile})

	r := p.send(t, "tagger-1", http.MethodPost, "/v1.41/build?networkmode=none", "application/x-tar", ctx)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Message, "Dockerfile line 2 (ADD) fetches") ||
		!strings.Contains(r.Message, "roles.tagger.builds.remote_sources: true") {
		t.Errorf("answer %d %q, want 403 naming builds.remote_sources", r.Status, r.Message)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("THE DAEMON ACTED: the URL was fetched %d times", n)
	}
	if ids := p.daemon.imagesLabelled(t, markerLabel+"="+m); len(ids) != 0 {
		t.Errorf("THE DAEMON ACTED: built %v", ids)
	}

	// An import from a URL is the same fetch outside a build.
	r = p.send(t, "builder-1", http.MethodPost, "/v1.41/images/create?fromSrc=http://"+ln.Addr().String()+"/image.tar", "application/x-tar", nil)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Message, "query fromSrc=") || !strings.Contains(r.Message, "roles.builder.builds.remote_sources: true") {
		t.Errorf("import from a URL: %d %q, want 403 naming builds.remote_sources", r.Status, r.Message)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("THE DAEMON ACTED: the URL was fetched %d times", n)
	}

	// What the guard is for: allowed, dockerd fetches the URL from the
	// host's network although the build's network is none.
	ref := "e2e-fetch/" + m + ":1"
	t.Cleanup(func() { p.daemon.removeImage(t, ref) })
	r = p.send(t, "fetcher-1", http.MethodPost, "/v1.41/build?networkmode=none&t="+ref, "application/x-tar", ctx)
	if r.Status != http.StatusOK || strings.Contains(r.Body, `"error"`) {
		t.Fatalf("build as fetcher: %d %s", r.Status, r.Body)
	}
	if n := hits.Load(); n == 0 || !p.daemon.imageExists(t, ref) {
		t.Errorf("allowed build: %d fetches, image %s exists %v; want dockerd to fetch from the host", n, ref, p.daemon.imageExists(t, ref))
	}
}

// TestImageAllowList: a role with images.allow creates containers and
// builds only from the images it lists, by name; an image ID is refused.
func TestImageAllowList(t *testing.T) {
	p := startImagePolicyEnv(t)
	m := newMarker()
	other := "e2e-other/" + m + ":1" // the same content under a name not listed
	if status, body := p.daemon.do(t, http.MethodPost, "/images/"+dockertestImage+"/tag?repo=e2e-other/"+m+"&tag=1", nil); status != http.StatusCreated {
		t.Fatalf("daemon tag: %d %s", status, body)
	}
	t.Cleanup(func() { p.daemon.removeImage(t, other) })
	var img struct{ ID string }
	p.daemon.getJSON(t, "/images/"+dockertestImage+"/json", &img)

	for _, image := range []string{other, img.ID, strings.TrimPrefix(img.ID, "sha256:")[:12]} {
		r := p.send(t, "builder-1", http.MethodPost, "/v1.41/containers/create", "application/json",
			[]byte(createBody(image, m, `,"HostConfig":{"NetworkMode":"none"}`)))
		if r.Status != http.StatusForbidden || !strings.Contains(r.Message, "images.allow") {
			t.Errorf("create from %s: %d %q, want 403 naming images.allow", image, r.Status, r.Message)
		}
	}
	if got := p.daemon.containersLabelled(t, markerLabel+"="+m); len(got) != 0 {
		t.Errorf("THE DAEMON ACTED: containers %v", got)
	}
	r := p.send(t, "builder-1", http.MethodPost, "/v1.41/containers/create", "application/json",
		[]byte(createBody(dockertestImage, m, `,"HostConfig":{"NetworkMode":"none"}`)))
	if r.Status != http.StatusCreated {
		t.Fatalf("create from the listed image: %d %q", r.Status, r.Body)
	}
	for _, c := range p.daemon.containersLabelled(t, markerLabel+"="+m) {
		p.daemon.removeContainer(t, c.ID)
	}

	builds := []struct {
		name  string
		files [][2]string
		want  string
	}{
		{"FROM not listed", [][2]string{{"Dockerfile", "FROM " + other + "\nLABEL " + markerLabel + "=" + m + "\n"}}, "Dockerfile line 1 (FROM)"},
		{"FROM through a build arg", [][2]string{{"Dockerfile", "ARG B=" + dockertestImage + "\nFROM $B\nLABEL " + markerLabel + "=" + m + "\n"}}, ""},
		{"COPY --from not listed", [][2]string{{"Dockerfile", "FROM " + dockertestImage + "\nCOPY --from=" + other + " /bin/true /t\nLABEL " + markerLabel + "=" + m + "\n"}}, "COPY --from"},
		// A second Dockerfile later in the tar replaces the first on
		// extraction: the gateway cuts the body, dockerd builds nothing.
		{"Dockerfile replaced later in the tar", [][2]string{
			{"Dockerfile", "FROM " + dockertestImage + "\n"},
			{"pad", strings.Repeat("x", 256<<10)},
			{"./Dockerfile", "FROM " + other + "\nLABEL " + markerLabel + "=" + m + "\n"},
		}, "cut"},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			target := "/v1.41/build?networkmode=none"
			if b.name == "FROM through a build arg" {
				target += "&buildargs=" + url.QueryEscape(`{"B":"`+other+`"}`)
				b.want = "Dockerfile line 2 (FROM)"
			}
			r := p.send(t, "builder-1", http.MethodPost, target, "application/x-tar", buildContext(t, b.files...))
			switch b.want {
			case "cut":
				if r.Status != http.StatusBadRequest || !strings.Contains(r.Message, "the context writes Dockerfile twice") {
					t.Errorf("build with a replaced Dockerfile: %d %s, want it cut with 400", r.Status, r.Body)
				}
				defer func() {
					// The premise: sent to the daemon whole, the later
					// Dockerfile is the one built.
					status, body := p.daemon.do(t, http.MethodPost, "/build?networkmode=none", buildContext(t, b.files...))
					ids := p.daemon.imagesLabelled(t, markerLabel+"="+m)
					if status != http.StatusOK || len(ids) != 1 {
						t.Errorf("direct build: %d %.300s; labelled images %v, want the later Dockerfile built", status, body, ids)
					}
					for _, id := range ids {
						p.daemon.removeImage(t, id)
					}
				}()
			default:
				if r.Status != http.StatusForbidden || !strings.Contains(r.Message, b.want) || !strings.Contains(r.Message, "images.allow") {
					t.Errorf("answer %d %q, want 403 naming %s and images.allow", r.Status, r.Message, b.want)
				}
			}
			if ids := p.daemon.imagesLabelled(t, markerLabel+"="+m); len(ids) != 0 {
				t.Errorf("THE DAEMON ACTED: built %v", ids)
			}
		})
	}
}

// TestImageRulesWithDockerCLI: the docker CLI's own builds (the classic
// builder, DOCKER_BUILDKIT=0) pass the Dockerfile checks: a context
// directory, a Dockerfile elsewhere (-f), one from standard input (which
// the CLI appends at the end of the context under a random name) and a
// gzipped context; a Dockerfile whose FROM is not listed is refused with
// the CLI showing the reason.
func TestImageRulesWithDockerCLI(t *testing.T) {
	p := startImagePolicyEnv(t)
	m := newMarker()
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	os.MkdirAll(filepath.Join(ctxDir, "Zdir"), 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Zdir", "late.txt"), []byte(strings.Repeat("z", 1<<20)), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte(m+"\n"), 0o644)
	dockerfile := "FROM " + dockertestImage + "\nCOPY hello.txt /hello.txt\n"
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644)
	os.WriteFile(filepath.Join(dir, "Other.Dockerfile"), []byte(dockerfile), 0o644)

	builds := []struct {
		name  string
		args  []string
		stdin []byte
	}{
		{"context directory", []string{"build", "-q", "-t", "e2e-cli/" + m + ":dir", ctxDir}, nil},
		{"gzipped context", []string{"build", "-q", "--compress", "-t", "e2e-cli/" + m + ":gz", ctxDir}, nil},
		{"Dockerfile outside the context", []string{"build", "-q", "-f", filepath.Join(dir, "Other.Dockerfile"), "-t", "e2e-cli/" + m + ":f", ctxDir}, nil},
		{"Dockerfile from standard input", []string{"build", "-q", "-f", "-", "-t", "e2e-cli/" + m + ":stdin", ctxDir}, []byte(dockerfile)},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			ref := b.args[len(b.args)-2]
			t.Cleanup(func() { p.daemon.removeImage(t, ref) })
			out, errOut, err := p.dockerAs(p.certs["tagger-1"], b.stdin, b.args...)
			if err != nil {
				t.Fatalf("docker %s: %v\n%s%s", strings.Join(b.args, " "), err, out, errOut)
			}
			if !p.daemon.imageExists(t, ref) {
				t.Errorf("the daemon has no %s", ref)
			}
		})
	}

	os.WriteFile(filepath.Join(dir, "Bad.Dockerfile"), []byte("FROM busybox:"+m+"\nLABEL "+markerLabel+"="+m+"\n"), 0o644)
	_, errOut, err := p.dockerAs(p.certs["tagger-1"], nil, "build", "-f", filepath.Join(dir, "Bad.Dockerfile"), ctxDir)
	if err == nil || !strings.Contains(errOut, "is not in images.allow; allow it by adding") {
		t.Errorf("build FROM an unlisted image: %v\n%s", err, errOut)
	}
	if ids := p.daemon.imagesLabelled(t, markerLabel+"="+m); len(ids) != 0 {
		t.Errorf("THE DAEMON ACTED: built %v", ids)
	}
}
