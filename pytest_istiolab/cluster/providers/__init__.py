"""Cluster providers: how a cluster and its kubeconfig come to exist (embedded, kind, existing)."""
