# Every target installs what it needs: a fresh clone only needs python3.11 and make.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?=
BOARD  ?= bit
FIRMWARE ?=
MODELS ?=
CLASSIFIER ?=
DETECTOR ?=
OUT    ?= out

.PHONY: venv sim test test-fast test-slow models deploy board studio studio-assets bench clean

# The studio page's editor and terminal (CodeMirror, xterm.js): npm ci of the pinned versions, copied where the
# server serves them (host_tools/studio/assets.py; a missing npm is one line saying how to install it).
ASSETS := host_tools/studio/static/vendor/versions.json

venv: $(STAMP) $(ASSETS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	$(PY) -m host_tools.kmodel.warm models/*.kmodel
	touch $@

$(ASSETS): host_tools/studio/web/package-lock.json host_tools/studio/assets.py | $(STAMP)
	$(PY) -m host_tools.studio.assets

studio-assets: $(ASSETS)

# The app on the virtual Maix Bit with the shipped demo models (headless, scripted mode switch).
sim: $(STAMP)
	$(PY) -m host_tools sim --out $(OUT)/sim

test: $(STAMP) $(ASSETS)
	$(PY) -m pytest -n 2 -q

# The long runs (default training on the user-like datasets, ...), each printing its figures.
test-slow: $(STAMP)
	$(PY) -m pytest -q -s -m heavy

test-fast: $(STAMP) $(ASSETS)
	$(PY) -m pytest -n 2 -q -m "not slow and not heavy"

# Rebuild the demo models (dataset -> keras -> int8 tflite -> kmodel + manifest) into models/.
models: $(STAMP)
	$(PY) -m host_tools models --out models

# MODELS: model folders (e.g. out/train/NAME; default models/); a kind none holds comes from the demos.
# PORT: the board's serial port (default: $MAIXKIT_PORT, or the one board found, e.g. the one `make board` runs).
deploy: $(STAMP)
	$(PY) -m host_tools deploy $(if $(PORT),--port $(PORT)) --board $(BOARD) $(if $(FIRMWARE),--firmware $(FIRMWARE)) \
		$(foreach m,$(MODELS),--models $(m)) $(if $(CLASSIFIER),--classifier $(CLASSIFIER)) \
		$(if $(DETECTOR),--detector $(DETECTOR))

board: $(STAMP)
	$(PY) -m host_tools board

# The board in a browser page (prints its URL with a token): the virtual board, or PORT=... for a real one.
studio: $(STAMP) $(ASSETS)
	$(PY) -m host_tools studio $(if $(PORT),--port $(PORT))

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(OUT) .pytest_cache
