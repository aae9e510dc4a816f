// The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule), taken from
// its module's example/prometheus-operator-crd/, so the chart tests can dry-run the
// monitoring objects against the real schemas (hack/go-tools/build.sh prometheus-operator-crds).
module wa-operator.local/go-tools/prometheus-operator-crds

go 1.26

require github.com/prometheus-operator/prometheus-operator v0.85.0
