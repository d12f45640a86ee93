// Command argocdhealth runs a health.lua the way Argo CD does (gopher-lua, the script run as a chunk
// with the resource in the global `obj`, only the base, table, string and math libraries open) on
// every test listed in the health_test.yaml next to it, in Argo CD's resource_customizations layout.
//
// Usage: argocdhealth DIR. Output: a JSON array of {"inputPath", "want": {status, message},
// "got": {status, message}}; exit 2 when the script or a test file cannot be read or run.
// Or: argocdhealth --objects SCRIPT, with a JSON array of objects on stdin: prints a JSON array of
// {status, message}, one per object.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type testFile struct {
	Tests []struct {
		HealthStatus health `json:"healthStatus"`
		InputPath    string `json:"inputPath"`
	} `json:"tests"`
}

type result struct {
	InputPath string `json:"inputPath"`
	Want      health `json:"want"`
	Got       health `json:"got"`
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--objects" {
		objects(os.Args[2])
		return
	}
	if len(os.Args) != 2 {
		fail("usage: argocdhealth DIR (holding health.lua and health_test.yaml) | argocdhealth --objects SCRIPT")
	}
	dir := os.Args[1]
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		fail("%v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		fail("%v", err)
	}
	var tests testFile
	if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
		fail("health_test.yaml: %v", err)
	}
	out := []result{}
	for _, t := range tests.Tests {
		input, err := os.ReadFile(filepath.Join(dir, t.InputPath))
		if err != nil {
			fail("%v", err)
		}
		var obj map[string]interface{}
		if err := yaml.Unmarshal(input, &obj); err != nil {
			fail("%s: %v", t.InputPath, err)
		}
		got, err := run(string(script), obj)
		if err != nil {
			fail("%s: %v", t.InputPath, err)
		}
		out = append(out, result{InputPath: t.InputPath, Want: t.HealthStatus, Got: got})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("%v", err)
	}
}

func objects(path string) {
	script, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	var objs []map[string]interface{}
	if err := json.Unmarshal(raw, &objs); err != nil {
		fail("stdin is not a JSON array of objects: %v", err)
	}
	out := make([]health, 0, len(objs))
	for i, obj := range objs {
		got, err := run(string(script), obj)
		if err != nil {
			fail("object %d: %v", i, err)
		}
		out = append(out, got)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("%v", err)
	}
}

func run(script string, obj map[string]interface{}) (health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return health{}, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return health{}, fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	return health{Status: lua.LVAsString(ret.RawGetString("status")), Message: lua.LVAsString(ret.RawGetString("message"))}, nil
}

// toLua converts decoded JSON the way Argo CD hands a resource to Lua: objects and arrays become
// tables (arrays 1-based), numbers become Lua numbers.
func toLua(l *lua.LState, v interface{}) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case map[string]interface{}:
		t := l.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	case []interface{}:
		t := l.NewTable()
		for _, e := range x {
			t.Append(toLua(l, e))
		}
		return t
	default:
		return lua.LString(fmt.Sprint(x))
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "argocdhealth: "+format+"\n", args...)
	os.Exit(2)
}
