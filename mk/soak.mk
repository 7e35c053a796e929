# `make soak`: ten minutes of mixed load watching memory and fds, then the crash test with
# 100 SIGKILLs. SOAK_SECONDS and CRASH_ROUNDS override.
SOAK_SECONDS ?= 600
CRASH_ROUNDS ?= 100

soak: build
	HIPUSERS_BIN=$(abspath $(BUILD))/hipusers python3 tests/soak/soak.py --duration $(SOAK_SECONDS)
	HIPUSERS_BIN=$(abspath $(BUILD))/hipusers HIPUSERS_CRASH_ROUNDS=$(CRASH_ROUNDS) \
		PYTHONDONTWRITEBYTECODE=1 python3 tests/e2e/test_crash.py
