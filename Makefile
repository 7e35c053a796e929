# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of theirs.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:8080
DATA       ?= ./data
FUZZ_SECONDS ?= 60
TOOLS      ?= $(abspath $(BUILD))/tools
PRISM      := $(TOOLS)/node_modules/.bin/prism

.PHONY: all deps tools build build-asan run test test-fast test-asan fuzz soak bench clean

all: build

deps:
	@./scripts/deps.sh

# What only the tests use: Debian's chromium and systemd (scripts/deps.sh test), and the Node
# tools (Prism, Redocly CLI, swagger-ui-dist) pinned in tools/npm; each installed once.
tools: deps
	@./scripts/deps.sh test
	@./scripts/npm-tools.sh $(TOOLS)

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIPUSERS_PRISM=$(PRISM) >/dev/null

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHIPUSERS_SANITIZE=ON -DHIPUSERS_PRISM=$(PRISM) >/dev/null

build-asan: deps $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	$(BUILD)/hipusers serve --listen $(LISTEN) --db $(DATA)/hipusers.db

# Every test, in the normal build and again under ASan+UBSan, then each fuzzer for 10 s.
test: build build-asan tools
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz-smoke

test-fast: build tools
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# Extra targets (fuzz, soak, bench) live in mk/, one file each.
-include mk/*.mk
