// gitops-health tells how the GitOps tools would judge the health of Kubernetes objects:
// kstatus (sigs.k8s.io/cli-utils, which Flux and kpt use) and Argo CD's Lua health checks
// (run in gopher-lua, the engine Argo CD embeds, set up the way Argo CD sets it up).
//
//	kubectl get whatsapp -A -o json | gitops-health --argocd-cm gitops/argocd/argocd-cm.yaml
//
// stdin holds one object or a List (kubectl -o json). stdout is a JSON array with, per
// object, kstatus's status.Compute result and Argo CD's health.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// Health is one tool's verdict on one object.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// ScriptResult is what a Lua health check returned, before Argo CD's own deletion rule.
type ScriptResult struct {
	Health
	DeletionMessage string `json:"deletionMessage,omitempty"`
}

// Verdict is the line printed for one object.
type Verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Kstatus   Health `json:"kstatus"`
	// ArgoCD is the health Argo CD shows (gitops-engine's GetResourceHealth with the check as override).
	ArgoCD Health `json:"argocd"`
	// ArgoCDScript is the check's own answer, which Argo CD (before v3.6) never asks for a terminating object.
	ArgoCDScript ScriptResult `json:"argocdScript"`
}

func main() {
	configMapPath := flag.String("argocd-cm", "", "argocd-cm ConfigMap (YAML) holding resource.customizations.health.<group>_<kind> checks")
	flag.Parse()
	if *configMapPath == "" {
		fail(errors.New("--argocd-cm is required"))
	}
	checks, err := readConfigMap(*configMapPath)
	if err != nil {
		fail(err)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	objects, err := decodeObjects(input)
	if err != nil {
		fail(err)
	}
	verdicts := make([]Verdict, 0, len(objects))
	for _, object := range objects {
		verdict, err := judge(object, checks)
		if err != nil {
			fail(fmt.Errorf("%s %s/%s: %w", object.GetKind(), object.GetNamespace(), object.GetName(), err))
		}
		verdicts = append(verdicts, verdict)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(verdicts); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gitops-health:", err)
	os.Exit(1)
}

// readConfigMap returns the data of the argocd-cm ConfigMap (or patch) at path.
func readConfigMap(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var configMap struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &configMap); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return configMap.Data, nil
}

// decodeObjects reads one object or a List. Numbers become int64 where they are whole,
// as the API machinery decodes them (kstatus reads generations with NestedInt64).
func decodeObjects(input []byte) ([]*unstructured.Unstructured, error) {
	var content map[string]any
	if err := utiljson.Unmarshal(input, &content); err != nil {
		return nil, fmt.Errorf("stdin is not a JSON object: %w", err)
	}
	items, isList := content["items"].([]any)
	if !isList {
		return []*unstructured.Unstructured{{Object: content}}, nil
	}
	objects := make([]*unstructured.Unstructured, 0, len(items))
	for index, item := range items {
		object, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("items[%d] is not an object", index)
		}
		objects = append(objects, &unstructured.Unstructured{Object: object})
	}
	return objects, nil
}

func judge(object *unstructured.Unstructured, checks map[string]string) (Verdict, error) {
	computed, err := status.Compute(object)
	if err != nil {
		return Verdict{}, fmt.Errorf("kstatus: %w", err)
	}
	key := configMapKey(object)
	script, ok := checks["resource.customizations.health."+key]
	if !ok {
		return Verdict{}, fmt.Errorf("no resource.customizations.health.%s in the argocd-cm", key)
	}
	openLibs := checks["resource.customizations.useOpenLibs."+key] == "true"
	verdict := Verdict{
		Kind:      object.GetKind(),
		Namespace: object.GetNamespace(),
		Name:      object.GetName(),
		Kstatus:   Health{Status: string(computed.Status), Message: computed.Message},
	}
	result, err := runHealthScript(object, script, openLibs)
	if err != nil {
		// Argo CD shows a failing check as Unknown with the error, deleting or not.
		verdict.ArgoCDScript = ScriptResult{Health: Health{Status: "Unknown", Message: err.Error()}}
		verdict.ArgoCD = verdict.ArgoCDScript.Health
		return verdict, nil
	}
	verdict.ArgoCDScript = result
	verdict.ArgoCD = argoHealth(object, result)
	return verdict, nil
}

// configMapKey is <group>_<kind>, or just <kind> for the core group, as Argo CD names
// argocd-cm keys (docs/operator-manual/health.md, "Way 1").
func configMapKey(object *unstructured.Unstructured) string {
	gvk := object.GroupVersionKind()
	if gvk.Group == "" {
		return gvk.Kind
	}
	return gvk.Group + "_" + gvk.Kind
}

// Argo CD's hook finalizer: terminating hooks keep the script's answer (gitops-engine
// pkg/health/health.go, pendingDeletionHealth).
const hookFinalizer = "argocd.argoproj.io/hook-finalizer"

// argoHealth applies gitops-engine's rule for terminating objects (Argo CD v3.6,
// pkg/health/health.go pendingDeletionHealth): a check that sets deletionMessage keeps its
// status with that message; otherwise Progressing, "Pending deletion" plus the finalizers.
// Argo CD before v3.6 answers Progressing "Pending deletion" without running the check.
func argoHealth(object *unstructured.Unstructured, result ScriptResult) Health {
	if object.GetDeletionTimestamp() == nil || hasString(object.GetFinalizers(), hookFinalizer) {
		return result.Health
	}
	if result.DeletionMessage != "" {
		return Health{Status: result.Status, Message: result.DeletionMessage}
	}
	message := "Pending deletion"
	if finalizers := object.GetFinalizers(); len(finalizers) > 0 {
		message += "; blocked by finalizers: " + strings.Join(finalizers, ", ")
	}
	return Health{Status: "Progressing", Message: message}
}

var validStatuses = []string{"Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing"}

// runHealthScript runs a check the way Argo CD's util/lua/lua.go (runLua, ExecuteHealthLua)
// does: no standard libraries unless useOpenLibs, then package, base and table; `obj` set
// to the object; one second to finish; the returned table's status must be a known one.
// Argo CD also opens a restricted os library (time and date only); checks here need none.
func runHealthScript(object *unstructured.Unstructured, script string, openLibs bool) (ScriptResult, error) {
	state := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer state.Close()
	for _, library := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := state.CallByParam(lua.P{Fn: state.NewFunction(library.open), NRet: 0, Protect: true}, lua.LString(library.name)); err != nil {
			return ScriptResult{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	state.SetContext(ctx)
	state.SetGlobal("obj", toLua(state, object.Object))
	if err := state.DoString(script); err != nil {
		return ScriptResult{}, err
	}
	table, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		return ScriptResult{}, fmt.Errorf("expect table output from Lua script, not %s", state.Get(-1).Type())
	}
	result := ScriptResult{
		Health:          Health{Status: luaString(table, "status"), Message: luaString(table, "message")},
		DeletionMessage: luaString(table, "deletionMessage"),
	}
	if !hasString(validStatuses, result.Status) {
		return ScriptResult{Health: Health{Status: "Unknown", Message: "Lua returned an invalid health status"}}, nil
	}
	return result, nil
}

func luaString(table *lua.LTable, field string) string {
	if value, ok := table.RawGetString(field).(lua.LString); ok {
		return string(value)
	}
	return ""
}

// toLua maps decoded JSON onto Lua values as Argo CD's decodeValue does: objects and
// arrays become tables (arrays 1-based), numbers LNumber, anything else nil.
func toLua(state *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case string:
		return lua.LString(converted)
	case int64:
		return lua.LNumber(converted)
	case float64:
		return lua.LNumber(converted)
	case []any:
		array := state.CreateTable(len(converted), 0)
		for _, item := range converted {
			array.Append(toLua(state, item))
		}
		return array
	case map[string]any:
		table := state.CreateTable(0, len(converted))
		for key, item := range converted {
			table.RawSetH(lua.LString(key), toLua(state, item))
		}
		return table
	}
	return lua.LNil
}

func hasString(list []string, wanted string) bool {
	for _, item := range list {
		if item == wanted {
			return true
		}
	}
	return false
}
