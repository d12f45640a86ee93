# Sourced by build-binaries.sh (control plane) and testbed/node/build-node-binaries.sh (kubelet,
# kube-proxy): builds commands of k8s.io/kubernetes at $K8S_VERSION through a wrapper module.
#
# Why a wrapper module: k8s.io/kubernetes's go.mod replaces its ~31 staging modules with local
# paths, so `go install pkg@version` refuses it; a throw-away module that requires it and re-points
# every staging module at its published v0.X.Y builds the same sources. The version is stamped with
# -X (otherwise /version says 0.0 and helm's kubeVersion checks misbehave).

# build_k8s_commands WORK_DIR MODULE_NAME BIN_DIR COMMAND... (uses K8S_VERSION and log())
build_k8s_commands() {
  local dir=$1 module=$2 bin_dir=$3 minor staging gomod ldflags pkg b
  shift 3
  mkdir -p "$dir" "$bin_dir"
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  staging="v0.${K8S_VERSION#v1.}"
  {
    echo "module $module"
    echo
    grep -E '^go ' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    grep -E '=> \./staging/src/' "$gomod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } > "$dir/tools.go"
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$dir" && go mod download)
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "$@"; do
    [ -x "$bin_dir/$b" ] && continue
    log "building $b $K8S_VERSION"
    (cd "$dir" && go build -trimpath -tags tools -ldflags "$ldflags" -o "$bin_dir/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$bin_dir/$b.tmp" "$bin_dir/$b"
  done
}
