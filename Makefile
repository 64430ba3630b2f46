# Two commands set everything up on a fresh clone:
#   make demo   - sync upstream samples through local mirrors and load one image per source
#                 (../shared/upstream where present, else the miniatures in the package; SHARED=DIR chooses)
#   make test   - the whole test suite on the pinned environment (what CI runs)
#   make notebooks - run notebooks/*.ipynb top to bottom (nbmake), on the root the demo built
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat constraints.txt pyproject.toml | sha256sum | cut -c1-12)
SHARED ?=
DEMO_DIR ?= build/demo

.PHONY: demo test lint env clean mutation mutation-new notebooks

# No prerequisites: the stamp's name is the hash of constraints.txt + pyproject.toml, so a change of
# their content names a new stamp, and a mere change of their times (a branch switch) reinstalls nothing.
$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(PY) -m covid19_images.testing.demo $(if $(SHARED),--shared $(SHARED)) --workdir $(DEMO_DIR)

notebooks: $(STAMP)
	$(PY) -m pytest --nbmake notebooks -q -p no:cacheprovider

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# Mutation testing of the safety-critical functions (docs/mutation.md); minutes, not in CI.
MUTANTS = \
	"covid19_images.core.paths.x_lexical_problem*" "covid19_images.core.paths.x_safe_relative*" \
	"covid19_images.core.paths.xǁSafePathsǁ*" \
	"covid19_images.manifest.splits.x_bucket*" "covid19_images.manifest.splits.x_split_for*" \
	"covid19_images.manifest.splits.x_shared_patient_keys*" \
	"covid19_images.manifest.splits.x_components*" "covid19_images.manifest.splits.x_assign_split_groups*" \
	"covid19_images.manifest.splits.x_assign_splits*" "covid19_images.manifest.splits.x_groups_across_splits*" \
	"covid19_images.manifest.near_index.x_hash_bytes*" "covid19_images.manifest.near_index.x__queried_pairs*" \
	"covid19_images.manifest.near_index.x__same_edges*" "covid19_images.manifest.near_index.x_key_index*" \
	"covid19_images.manifest.duplicates.x__representatives*" "covid19_images.manifest.duplicates.x__group_names*" \
	"covid19_images.manifest.duplicates.x__strings*" \
	"covid19_images.manifest.near_index.x_pairs_within*" "covid19_images.manifest.near_index.x_packed_bits*" \
	"covid19_images.manifest.near_index.x__sorted_pairs*" "covid19_images.manifest.near_index.xǁNearIndexǁload*" \
	"covid19_images.manifest.near_index.xǁNearIndexǁ_delta*" "covid19_images.manifest.near_index.x__between*" \
	"covid19_images.manifest.duplicates.x_hamming*" "covid19_images.manifest.duplicates.x__star_edges*" \
	"covid19_images.manifest.duplicates.x__settings*" "covid19_images.manifest.duplicates.x__search*" \
	"covid19_images.manifest.duplicates.x_near_pairs*" "covid19_images.manifest.duplicates.x_find_duplicates*" \
	"covid19_images.manifest.duplicates.x_assign_dup_groups*" \
	"covid19_images.core.atomic.x_write_atomic*" \
	"covid19_images.loaders.cache.x_cache_key*" "covid19_images.loaders.cache.x__content_id*" \
	"covid19_images.loaders.cache.x__reader_fingerprint*" "covid19_images.loaders.cache.x__open_valid*" \
	"covid19_images.sources.git.x_check_gitmodules*" "covid19_images.sources.registry.x_check_url*" \
	$(MUTANTS_ROUND_THREE) $(MUTANTS_ROUND_FOUR)

# Issue 20's scope: the modules added since the list above was set (docs/mutation.md, second table).
MUTANTS_ROUND_THREE := \
	"covid19_images.loaders.shards.*" "covid19_images.loaders.augment.*" "covid19_images.export.guard.*" \
	"covid19_images.loaders._checks.*" "covid19_images.loaders.volumes.x_target_shape*" \
	"covid19_images.loaders.volumes.x_resample*" "covid19_images.loaders._manifest.xǁManifestStampǁ*" \
	"covid19_images.manifest.source_cache.x_source_key*" "covid19_images.manifest.source_cache.x_settings_fingerprint*" \
	"covid19_images.manifest.source_cache.x_checkout_is_clean*" "covid19_images.manifest.source_cache.x_cache_dir_of*" \
	"covid19_images.manifest.source_cache.xǁSourceCacheǁ*" "covid19_images.sync.shrink.x_find_shrinks*" \
	"covid19_images.sync.shrink.x__counts*" "covid19_images.sync.shrink.xǁShrinkǁ*" \
	"covid19_images.manifest.annotations.xǁ_Joinerǁ*"

# The rest of issue 20's scope (docs/mutation.md, "Round four"): COVIDx schemes, selection, loader options,
# and the streaming rooms' rank/worker split and serving (factored into loaders.shards, framework-free).
MUTANTS_ROUND_FOUR := \
	"covid19_images.manifest.split_schemes.*" "covid19_images.manifest.covidx.x_name_key*" \
	"covid19_images.manifest.covidx.x_read_listing*" "covid19_images.manifest.covidx.x__rows_by_name*" \
	"covid19_images.manifest.covidx.x__candidates*" "covid19_images.manifest.covidx.x__disagrees*" \
	"covid19_images.manifest.covidx.x_covidx_split*" "covid19_images.manifest.covidx.x__conflicts*" \
	"covid19_images.manifest.covidx.x_covidx_labels*" \
	"covid19_images.loaders._select.x__is_true*" "covid19_images.loaders._select.x__frames*" \
	"covid19_images.loaders._select.x__refuse_over_budget*" "covid19_images.loaders._select.x_largest_first*" \
	"covid19_images.loaders._select.x_select*" "covid19_images.loaders._select.x_refuse_paths_outside*" \
	"covid19_images.loaders._select.x__checked_out*" "covid19_images.loaders._select.x_check_available*" \
	"covid19_images.loaders._options.x_make_options*" "covid19_images.loaders._options.x__check_tasks_and_volumes*" \
	"covid19_images.loaders._options.x_with_split*" \
	"covid19_images.loaders.shards.x_rank_and_world_of*" "covid19_images.loaders.shards.x_rank_samples*" \
	"covid19_images.loaders.shards.x_equalized*" "covid19_images.loaders.shards.x_tfrecord_files*" \
	"covid19_images.sources.row_blocks.x_block_bounds*" "covid19_images.sources.row_blocks.x_block_digests*" \
	"covid19_images.sources.row_blocks.x_block_holds*"

mutation: $(STAMP)
	rm -rf mutants
	env -u PYTHONPATH $(VENV)/bin/mutmut run $(MUTANTS)
	$(VENV)/bin/mutmut results

# Only the newest scope (round four; ROUND=three for round three, ROUND="three four" for both).
# On a shared machine: nice -n 10 make mutation-new MAX_CHILDREN=2.
ROUND ?= four
mutation-new: $(STAMP)
	rm -rf mutants
	env -u PYTHONPATH $(VENV)/bin/mutmut run $(if $(MAX_CHILDREN),--max-children $(MAX_CHILDREN)) \
		$(foreach r,$(ROUND),$(MUTANTS_ROUND_$(shell echo $(r) | tr a-z A-Z)))
	$(VENV)/bin/mutmut results

clean:
	rm -rf build .pytest_cache mutants
