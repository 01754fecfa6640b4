"""The namespace launcher: builds a container's sandbox and execs its workload."""
