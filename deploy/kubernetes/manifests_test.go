// Package kubernetes holds Warden's Kubernetes manifests and their test. It
// is a module of its own so that k8s.io/api stays out of Warden's go.mod.
package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization these manifests
// use; decoding is strict, so anything else in the file is an error.
type kustomization struct {
	APIVersion         string   `json:"apiVersion"`
	Kind               string   `json:"kind"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
	GeneratorOptions struct {
		DisableNameSuffixHash bool `json:"disableNameSuffixHash"`
	} `json:"generatorOptions"`
}

// objects holds every decoded manifest by kind and name.
type objects struct {
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	pdbs         map[string]*policyv1.PodDisruptionBudget
	accounts     map[string]*corev1.ServiceAccount
	secrets      map[string]*corev1.Secret
	configMaps   map[string]map[string]string // name -> file name -> content
}

// decodeStrict decodes one YAML document into out; unknown or duplicate
// fields are errors.
func decodeStrict(doc []byte, out any) error {
	return yaml.UnmarshalStrict(doc, out)
}

func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// load decodes kustomization.yaml, every resource it lists, the generated
// ConfigMaps and secrets.example.yaml.
func load(t *testing.T) (*kustomization, *objects) {
	t.Helper()
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := decodeStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	o := &objects{statefulSets: map[string]*appsv1.StatefulSet{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, accounts: map[string]*corev1.ServiceAccount{},
		secrets: map[string]*corev1.Secret{}, configMaps: map[string]map[string]string{}}
	files := append(slices.Clone(k.Resources), "secrets.example.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(b) {
			if err := o.add(doc); err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
			}
		}
	}
	for _, g := range k.ConfigMapGenerator {
		o.configMaps[g.Name] = map[string]string{}
		for _, f := range g.Files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatalf("configMapGenerator %s: %v", g.Name, err)
			}
			o.configMaps[g.Name][filepath.Base(f)] = string(b)
		}
	}
	return &k, o
}

func (o *objects) add(doc []byte) error {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	var name string
	var err error
	switch meta.APIVersion + "/" + meta.Kind {
	case "apps/v1/StatefulSet":
		var x appsv1.StatefulSet
		err, name = decodeStrict(doc, &x), x.Name
		o.statefulSets[name] = &x
	case "v1/Service":
		var x corev1.Service
		err, name = decodeStrict(doc, &x), x.Name
		o.services[name] = &x
	case "policy/v1/PodDisruptionBudget":
		var x policyv1.PodDisruptionBudget
		err, name = decodeStrict(doc, &x), x.Name
		o.pdbs[name] = &x
	case "v1/ServiceAccount":
		var x corev1.ServiceAccount
		err, name = decodeStrict(doc, &x), x.Name
		o.accounts[name] = &x
	case "v1/Secret":
		var x corev1.Secret
		err, name = decodeStrict(doc, &x), x.Name
		o.secrets[name] = &x
	default:
		return fmt.Errorf("unexpected %s %s", meta.APIVersion, meta.Kind)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", meta.Kind, err)
	}
	if name == "" {
		return fmt.Errorf("%s without a name", meta.Kind)
	}
	return nil
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	// The decoder the other tests rely on must refuse a misspelt field.
	bad := []byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  replica: 3\n")
	var s appsv1.StatefulSet
	if err := decodeStrict(bad, &s); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("misspelt spec.replica decoded without the expected error: %v", err)
	}
}

func TestManifests(t *testing.T) {
	k, o := load(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	ss := o.statefulSets["warden"]
	if ss == nil {
		t.Fatalf("no StatefulSet warden; have %v", keys(o.statefulSets))
	}
	spec := ss.Spec
	pod := spec.Template.Spec
	labels := spec.Template.Labels
	check := func(ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Errorf(format, args...)
		}
	}
	check(spec.Replicas != nil && *spec.Replicas == 3, "replicas %v, want 3", spec.Replicas)
	check(spec.PodManagementPolicy == appsv1.ParallelPodManagement, "podManagementPolicy %q: the group forms only once all three run, so pods must start in parallel", spec.PodManagementPolicy)
	check(spec.Selector != nil && matches(spec.Selector.MatchLabels, labels), "selector %v does not match the pod labels %v", spec.Selector, labels)

	// Headless Service: the StatefulSet's serviceName, gossip ports, pods
	// published before ready.
	hs := o.services[spec.ServiceName]
	if hs == nil {
		t.Fatalf("serviceName %q names no Service; have %v", spec.ServiceName, keys(o.services))
	}
	check(hs.Spec.ClusterIP == corev1.ClusterIPNone, "Service %s is not headless (clusterIP %q)", hs.Name, hs.Spec.ClusterIP)
	check(hs.Spec.PublishNotReadyAddresses, "Service %s must publish not-ready pods: a node is ready only after it met the others", hs.Name)
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	for _, svc := range o.services {
		check(matches(svc.Spec.Selector, labels), "Service %s selector %v does not select the pods %v", svc.Name, svc.Spec.Selector, labels)
		for _, p := range svc.Spec.Ports {
			cp, ok := ports[p.TargetPort.String()]
			check(ok && p.TargetPort.Type == intstr.String, "Service %s port %s targets %q, not a named container port (%v)", svc.Name, p.Name, p.TargetPort.String(), keys(ports))
			check(ok && cp.ContainerPort == p.Port && protocol(cp.Protocol) == protocol(p.Protocol), "Service %s port %s (%d/%s) and container port %+v differ", svc.Name, p.Name, p.Port, protocol(p.Protocol), cp)
		}
	}
	for _, want := range []struct {
		name  string
		port  int32
		proto corev1.Protocol
	}{{"http", 3000, corev1.ProtocolTCP}, {"raft", 7000, corev1.ProtocolTCP}, {"gossip-tcp", 7946, corev1.ProtocolTCP}, {"gossip-udp", 7946, corev1.ProtocolUDP}} {
		p, ok := ports[want.name]
		check(ok && p.ContainerPort == want.port && protocol(p.Protocol) == want.proto, "container port %s: %+v, want %d/%s", want.name, p, want.port, want.proto)
	}

	// Probes: readiness /readyz, liveness /healthz, on the http port.
	probe := func(what string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: %+v, want an HTTP GET of %s", what, p, path)
			return
		}
		check(p.HTTPGet.Path == path && p.HTTPGet.Port.String() == "http", "%s probe: %s on port %s, want %s on http", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")

	// Stable node id from the pod name; advertised addresses from the pod IP.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	id := env["WARDEN_NODE_ID"]
	check(id.ValueFrom != nil && id.ValueFrom.FieldRef != nil && id.ValueFrom.FieldRef.FieldPath == "metadata.name", "WARDEN_NODE_ID must come from metadata.name: %+v", id)
	ip := env["POD_IP"]
	check(ip.ValueFrom != nil && ip.ValueFrom.FieldRef != nil && ip.ValueFrom.FieldRef.FieldPath == "status.podIP", "POD_IP must come from status.podIP: %+v", ip)
	for name, port := range map[string]string{"WARDEN_HTTP_ADVERTISE": "http", "WARDEN_RAFT_ADVERTISE": "raft", "WARDEN_GOSSIP_ADVERTISE": "gossip-tcp"} {
		want := fmt.Sprintf("$(POD_IP):%d", ports[port].ContainerPort)
		check(env[name].Value == want, "%s = %q, want %q", name, env[name].Value, want)
		check(slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_IP" }) < slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name }), "%s uses $(POD_IP), which must be defined before it", name)
	}

	// Anti-affinity across zones.
	aff := pod.Affinity
	var zone bool
	if aff != nil && aff.PodAntiAffinity != nil {
		for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if term.TopologyKey == "topology.kubernetes.io/zone" && term.LabelSelector != nil && matches(term.LabelSelector.MatchLabels, labels) {
				zone = true
			}
		}
	}
	check(zone, "no required pod anti-affinity on topology.kubernetes.io/zone selecting the pods: %+v", aff)

	// PodDisruptionBudget: minAvailable 2 of the same pods.
	pdb := o.pdbs["warden"]
	if pdb == nil {
		t.Fatalf("no PodDisruptionBudget warden; have %v", keys(o.pdbs))
	}
	check(pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() == 2, "PDB minAvailable %v, want 2", pdb.Spec.MinAvailable)
	check(pdb.Spec.Selector != nil && matches(pdb.Spec.Selector.MatchLabels, labels), "PDB selector %v does not select the pods", pdb.Spec.Selector)

	// Resources, non-root, read-only root, no token.
	check(c.Resources.Requests.Cpu().MilliValue() > 0 && c.Resources.Requests.Memory().Value() > 0, "resource requests missing: %+v", c.Resources.Requests)
	check(c.Resources.Limits.Memory().Value() >= c.Resources.Requests.Memory().Value(), "memory limit below request: %+v", c.Resources)
	check(pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot, "pods must run as non-root")
	check(c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem, "root filesystem must be read-only")
	check(c.SecurityContext != nil && c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation, "privilege escalation must be off")
	check(o.accounts[pod.ServiceAccountName] != nil, "serviceAccountName %q names no ServiceAccount", pod.ServiceAccountName)
	check(pod.TerminationGracePeriodSeconds != nil && *pod.TerminationGracePeriodSeconds >= 20, "terminationGracePeriodSeconds %v: a clean stop takes up to ~15 s", pod.TerminationGracePeriodSeconds)

	// Volumes: every mount has a volume; Secrets and the ConfigMap exist,
	// and every file the configuration names is mounted from one of them.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	claims := map[string]bool{}
	for _, vc := range spec.VolumeClaimTemplates {
		claims[vc.Name] = true
	}
	provides := map[string]bool{} // file paths inside the container
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		switch {
		case claims[m.Name]:
			provides[m.MountPath+"/"] = true
		case !ok:
			t.Errorf("volumeMount %s names no volume", m.Name)
		case v.Secret != nil:
			s := o.secrets[v.Secret.SecretName]
			if s == nil {
				t.Errorf("volume %s: Secret %q not defined in secrets.example.yaml", m.Name, v.Secret.SecretName)
				continue
			}
			for key := range s.StringData {
				provides[m.MountPath+"/"+key] = true
			}
		case v.ConfigMap != nil:
			cm, ok := o.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Errorf("volume %s: ConfigMap %q is not generated by kustomization.yaml", m.Name, v.ConfigMap.Name)
				continue
			}
			if m.SubPath != "" {
				check(cm[m.SubPath] != "", "ConfigMap %s has no %s", v.ConfigMap.Name, m.SubPath)
				provides[m.MountPath] = true
			}
		}
	}
	config := o.configMaps["warden-config"]["warden.yaml"]
	check(slices.Contains(c.Args, "--config") && provides[c.Args[slices.Index(c.Args, "--config")+1]], "args %v: --config must name the mounted warden.yaml", c.Args)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatalf("warden.yaml: %v", err)
	}
	// Each pod's own certificate: CN = node id, so the path names it.
	for i := 0; i < int(*spec.Replicas); i++ {
		pod := fmt.Sprintf("%s-%d", ss.Name, i)
		for name, ext := range map[string]string{"WARDEN_RAFT_TLS_CERT_FILE": ".crt", "WARDEN_RAFT_TLS_KEY_FILE": ".key"} {
			v := env[name].Value
			check(strings.Contains(v, "$(WARDEN_NODE_ID)") && provides[strings.ReplaceAll(v, "$(WARDEN_NODE_ID)", pod)],
				"%s = %q: for pod %s it must name its own %s file mounted from a Secret", name, v, pod, ext)
		}
	}
	check(slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "WARDEN_NODE_ID" }) < slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "WARDEN_RAFT_TLS_CERT_FILE" }), "WARDEN_NODE_ID must be defined before the certificate paths that use it")
	for _, key := range []string{"raft.tls_ca_file", "gossip.encrypt_key_file", "auth.tokens_file", "mysql.password_file", "mysql.replication_password_file"} {
		path, _ := lookup(cfg, key).(string)
		check(path != "" && provides[path], "warden.yaml %s = %q: not a file mounted from a Secret (%v)", key, path, keys(provides))
	}
	dataDir, _ := lookup(cfg, "data_dir").(string)
	check(provides[dataDir+"/"], "data_dir %q is not the volume claim's mount", dataDir)
	check(fmt.Sprint(lookup(cfg, "raft.bootstrap_expect")) == fmt.Sprint(*spec.Replicas), "raft.bootstrap_expect %v, replicas %d", lookup(cfg, "raft.bootstrap_expect"), *spec.Replicas)
	// gossip.join: the pods' stable names under the headless Service.
	join, _ := lookup(cfg, "gossip.join").([]any)
	var want []any
	for i := 0; i < int(*spec.Replicas); i++ {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", ss.Name, i, hs.Name, ports["gossip-tcp"].ContainerPort))
	}
	check(slices.Equal(join, want), "gossip.join %v, want %v", join, want)
	for name, s := range o.secrets {
		check(matches(s.Labels, map[string]string{"app.kubernetes.io/name": "warden"}), "Secret %s lacks the app label", name)
	}
}

func lookup(m map[string]any, dotted string) any {
	var cur any = m
	for _, part := range strings.Split(dotted, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[part]
	}
	return cur
}

// matches reports whether selector is non-empty and every label in it is
// in labels.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
