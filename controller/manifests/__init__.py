"""Reading manifests: YAML files and directories into validated documents."""
