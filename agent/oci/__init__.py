"""The OCI image spec's data, shared by the registry client, the store and the runtime:
media types, descriptors, ImageManifest / ImageIndex parsing, platforms."""
