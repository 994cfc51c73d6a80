"""Installing the agent on hosts with no internet: a wheel house built on the controller,
copied over SFTP (only the wheels a host lacks), installed into the host's own venv."""
