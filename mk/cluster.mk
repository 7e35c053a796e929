# `make run-cluster`: PostgreSQL, $(CLUSTER_SERVERS) servers and HAProxy in front of them on
# $(LISTEN), data under $(CLUSTER_DIR) (kept between runs); Ctrl-C stops all of it.
# scripts/cluster.sh does the work (its header lists the options).
CLUSTER_DIR     ?= $(DATA)/cluster
CLUSTER_SERVERS ?= 3

.PHONY: run-cluster

run-cluster: build
	@./scripts/deps.sh cluster
	@scripts/cluster.sh run $(CLUSTER_DIR) --servers $(CLUSTER_SERVERS) --listen $(LISTEN) \
		--bin $(BUILD)/hipusers --hints
