"""The benchmark: realistic patients at several sizes, measured in-process and over HTTP."""
