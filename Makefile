# Thin wrapper over CMake. `make demo` and `make test` each install what is missing,
# configure, build, then run the main job or the whole test suite.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
MPI_BUILD ?= build-mpi
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build demo test test-fast asan fuzz test-mpi bench clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >$(BUILD).configure.log 2>&1 \
		|| { cat $(BUILD).configure.log; exit 1; }
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD)

# Every benchmark workload, edifice and PyTorch, written to bench/RESULTS.md (~10 min).
bench: deps
	@./bench/run.sh $(BUILD)

# The whole suite: the normal build, then again under AddressSanitizer + UBSan (all but
# the slow learning test, test_quality, which runs once, in the normal build), then each
# fuzz target for EDIFICE_FUZZ_SECONDS (tests/fuzz/README.md), then the data-parallel
# tests on 2 ranks (Open MPI; about 4 minutes, most of it the MPI build).
test: test-fast asan fuzz test-mpi

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DEDIFICE_SANITIZE=ON >$(ASAN_BUILD).configure.log 2>&1 \
		|| { cat $(ASAN_BUILD).configure.log; exit 1; }
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS) -E '^test_quality$$'

# The fuzz targets with libFuzzer, ASan and UBSan (clang-19), each fuzzed for a short time.
fuzz: deps
	@CC=clang-19 cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 -DEDIFICE_SANITIZE=ON \
		-DEDIFICE_FUZZ=ON >$(FUZZ_BUILD).configure.log 2>&1 || { cat $(FUZZ_BUILD).configure.log; exit 1; }
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_targets
	@cd $(FUZZ_BUILD) && ctest --output-on-failure -j$(JOBS) -R '^fuzz/'

# Data-parallel training (tests/mpi/README.md): Open MPI installed, an EDIFICE_MPI build with
# only what the MPI tests need, run with mpirun -np 2 --oversubscribe. Open MPI refuses to
# run as root unless both variables say yes; CI runs as root in a throwaway container.
test-mpi:
	@EDIFICE_MPI=1 ./scripts/install-deps.sh
	@cmake -S . -B $(MPI_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDIFICE_MPI=ON >$(MPI_BUILD).configure.log 2>&1 \
		|| { cat $(MPI_BUILD).configure.log; exit 1; }
	@cmake --build $(MPI_BUILD) -j$(JOBS) --target mpi_tests
	@cd $(MPI_BUILD) && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ctest --output-on-failure -L '^mpi$$'

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(MPI_BUILD) $(BUILD).configure.log $(ASAN_BUILD).configure.log \
		$(FUZZ_BUILD).configure.log $(MPI_BUILD).configure.log
