"""Messages of the kubelet PodResources API v1 (api.proto; api_pb2 is generated from it)."""
