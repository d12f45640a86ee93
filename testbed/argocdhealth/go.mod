module sis.local/argocdhealth

go 1.25

require (
	github.com/yuin/gopher-lua v1.1.1
	sigs.k8s.io/yaml v1.4.0
)
