# `make test-repeat N=5`: `make test` N times in a row with a CPU burner on every core
# beside it (LOAD=0 for none); stops at the first failure. Proves the suite does not
# depend on an idle machine.
N    ?= 5
LOAD ?= 1

.PHONY: test-repeat

test-repeat:
	scripts/test-repeat.sh $(N) $(LOAD)
