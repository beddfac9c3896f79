"""Adopting the tool: import a Kustomize repo (`import kustomize`), scaffold a new repo (`init`).

Nothing here is on the render path; the render steps never import this package."""
