# Entry points for people and CI. Everything goes through CMake; this file only orders steps.
#   make demo   install what is missing, build, run a real job on the mini-cluster
#   make test   install what is missing, build (plain and ASan+UBSan), run every test
#   make bench  build with optimisation and print the benchmark figures
.PHONY: all deps build build-asan test test-plain test-asan demo bench clean fuzz

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

test-plain: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

test-asan: build-asan
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600 -LE slow

test: test-plain test-asan

demo: build
	@sh scripts/demo.sh $(BUILD)

bench: build
	@sh bench/run $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
