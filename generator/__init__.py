"""gitops-gen: render base manifests and per-environment overlays into GitOps-ready output
where every ConfigMap is immutable and named by its content hash."""

__version__ = "0.1.0"
