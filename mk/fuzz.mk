# libFuzzer targets (tests/fuzz, docs/fuzzing.md), built with clang + ASan + UBSan in $(FUZZ_BUILD).
#   make fuzz                    every target for $(FUZZ_SECONDS) s (default 60)
#   make fuzz FUZZ_SECONDS=600   longer
#   make fuzz-smoke              every target for 10 s (what `make test` runs)
#   make fuzz-build              only build them
# Targets run $(FUZZ_JOBS) at a time. Any crash, leak, timeout or sanitizer report fails the target.
FUZZ_CC          ?= clang
FUZZ_JOBS        ?= $(JOBS)
FUZZ_SMOKE_SECONDS ?= 10

.PHONY: fuzz fuzz-smoke fuzz-build

$(FUZZ_BUILD)/Makefile: CMakeLists.txt tests/fuzz/CMakeLists.txt
	CC=$(FUZZ_CC) cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DHIPUSERS_FUZZ=ON -DHIPUSERS_SANITIZE=OFF >/dev/null

fuzz-build: deps $(FUZZ_BUILD)/Makefile
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_JOBS)

fuzz-smoke: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(FUZZ_JOBS)
