"""The image store: content-addressed blobs in the OCI image layout, verified on the way
in, and each layer unpacked once (safely) for every container to share."""
