# Entry points. `make lab` is the main job (lab up + site.yml); `make test` runs the whole test suite.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles

.PHONY: setup lab lab-up lab-down site test lint unit integration sanity build molecule system

setup:  ## install what the lab and the tests need (apt packages, containers.conf, lab image, .venv)
	bash lab/setup-host.sh
	@mkdir -p .cache/collections/ansible_collections/ierahkwa .cache/lab
	@ln -sfn ../../../.. .cache/collections/ansible_collections/ierahkwa/platform

lab: setup lab-up site  ## bring up the lab and run site.yml against it

lab-up:
	ansible-playbook -i inventories/lab lab/lab.yml

lab-down:
	ansible-playbook -i inventories/lab lab/lab.yml -e lab_state=absent

site:
	ansible-playbook -i inventories/lab playbooks/site.yml

test: setup  ## the whole test suite: lint, unit, integration, sanity, build, every Molecule scenario (platform: the whole lab)
	bash tests/run.sh $(STAGES)

lint unit integration sanity build molecule system: setup
	bash tests/run.sh $@
