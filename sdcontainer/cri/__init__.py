"""The Kubernetes CRI (runtime.v1) service over the engine: docs/kubernetes.md."""
