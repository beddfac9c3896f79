"""gitops-gen: render base manifests and per-environment overlays into GitOps-ready output
where every ConfigMap is immutable and named by its content hash."""

__version__ = "0.1.0"

# Where gitops-gen's git repository lives, for what `gitops-gen init` writes (pre-commit hook,
# CI install step) and the docs: an example address until the project is published; `init
# --source URL` writes another.
SOURCE_URL = "https://git.example.com/platform/gitops-gen.git"
