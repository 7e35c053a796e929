# `make bench-scale`: one tenant of $(SCALE_USERS) Eka Users (default 1,000,000) seeded
# through `hipusers import`, against the same measures at 10,000: GET by id p50/p99, create
# throughput, a full streamed list (MB/s and the server's RSS growth), and the RSS under GET
# load at 100,000 users; each the median of 3, printed beside its target (bench/scale.py).
# Not part of `make test`: it takes minutes. The seeded databases are kept in
# $(BUILD)/bench-scale/schema-V/ (V: the schema version), so a second run skips seeding.
#   make bench-scale SCALE_USERS=200000   another size
#   make bench-scale SCALE_ARGS="--duration 10 --only get,create"
SCALE_USERS ?= 1000000
SCALE_ARGS  ?=

.PHONY: bench-scale

bench-scale: build
	python3 bench/scale.py --bin $(BUILD)/hipusers --cache $(BUILD)/bench-scale --users $(SCALE_USERS) $(SCALE_ARGS)
