// Command kstatus prints the kstatus verdict that both kstatus libraries users meet compute for
// each object it is given: sigs.k8s.io/cli-utils (kubectl-style tools, kpt) and Flux's fork
// (kustomize-controller and helm-controller health checks).
//
// Input on stdin: a JSON array of objects as the API server returns them.
// Output on stdout: a JSON array, one entry per object, in the same order:
// {"cli-utils": {"status": ..., "message": ...}, "flux": {"status": ..., "message": ...}}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	flux "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/util/json"
	upstream "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	var objects []map[string]interface{}
	// apimachinery's decoder keeps integers as int64, which the field accessors insist on.
	if err := kjson.Unmarshal(raw, &objects); err != nil {
		fail("stdin is not a JSON array of objects: %v", err)
	}
	out := make([]map[string]verdict, 0, len(objects))
	for i, obj := range objects {
		// Each library gets its own copy: neither should see what the other did to the map.
		up, err := upstream.Compute(&unstructured.Unstructured{Object: deepCopy(obj)})
		if err != nil {
			fail("object %d: cli-utils: %v", i, err)
		}
		fx, err := flux.Compute(&unstructured.Unstructured{Object: deepCopy(obj)})
		if err != nil {
			fail("object %d: flux cli-utils: %v", i, err)
		}
		out = append(out, map[string]verdict{
			"cli-utils": {Status: up.Status.String(), Message: up.Message},
			"flux":      {Status: fx.Status.String(), Message: fx.Message},
		})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("writing stdout: %v", err)
	}
}

func deepCopy(obj map[string]interface{}) map[string]interface{} {
	return (&unstructured.Unstructured{Object: obj}).DeepCopy().Object
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(2)
}
