# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks an application's configuration against a schema from inventory: the logic of validate_config.

``load_schema`` checks the schema itself (and raises ``SchemaError`` naming what is wrong with it);
``validate`` returns **every** violation as ``{'file', 'key', 'reason'}`` and never puts a value in a reason, so
that a secret in the configuration cannot leak through the report. ``parse_env`` reads ``KEY=VALUE`` files.

Schema::

    keys:                      # key -> rule; nested JSON/YAML keys are dotted paths (ConnectionStrings.Default)
      PORT: {type: port, required: true}
      LOG_LEVEL: {type: str, choices: [debug, info, warn, error]}
      DB_PASSWORD: {type: str, secret: true}      # may hold a secret (delivered by secret_file)
    additional_keys: true      # false: a key the schema does not name is a violation
    rules:                     # cross-field rules, JMESPath expressions over the configuration (all as text)
      - {that: "to_number(POOL_SIZE) <= to_number(DB_MAX_CONNECTIONS)", keys: [POOL_SIZE], message: "..."}
    secrets: flag              # flag (default) | ignore: values that look like secrets in keys not marked secret
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    import jmespath

    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - jmespath is in requirements.txt
    jmespath = None
    HAS_JMESPATH = False

TYPES = ('str', 'int', 'float', 'bool', 'url', 'port', 'duration', 'size', 'email', 'list', 'dict')
RULE_KEYS = {'type', 'required', 'choices', 'pattern', 'min', 'max', 'secret', 'description'}
SCHEMA_KEYS = {'keys', 'additional_keys', 'rules', 'secrets'}
TRUE, FALSE = ('true', 'yes', 'on', '1'), ('false', 'no', 'off', '0')
DURATION = re.compile(r'^(\d+(\.\d+)?(ms|s|m|h|d|w))+$|^\d+$')
SIZE = re.compile(r'^\d+(\.\d+)?\s*([kmgtp]i?b?|b)?$', re.I)
EMAIL = re.compile(
    r'^[A-Za-z0-9.!#$%&\'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
    r'(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
)
URL = re.compile(r'^[a-z][a-z0-9+.-]*://[^\s/?#]+[^\s]*$', re.I)
ENV_LINE = re.compile(r'^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$')
SECRET_NAME = re.compile(r'(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth)', re.I)
REFERENCE = re.compile(r'^(\$\{[^}]+\}|\$[A-Z_][A-Z0-9_]*|vault:.*|file:.*|/run/secrets/.*|)$')
SECRET_VALUES = (
    ('a private key', re.compile(r'-----BEGIN [A-Z ]*PRIVATE KEY-----')),
    ('an AWS access key', re.compile(r'\b(AKIA|ASIA)[A-Z0-9]{16}\b')),
    ('a JSON Web Token', re.compile(r'\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}')),
    ('a Vault token', re.compile(r'\bhv[sbr]\.[A-Za-z0-9_-]{20,}')),
    ('a password inside a URL', re.compile(r'^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@', re.I)),
    ('a GitHub token', re.compile(r'\bgh[pousr]_[A-Za-z0-9]{30,}')),
)


class SchemaError(Exception):
    """The schema itself is invalid; the message names the schema key."""


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError('%s must be a number' % what)
    return value


def _key_rule(key, rule):
    """One key's rule, checked, with its type filled in."""
    where = 'schema key %s' % key
    if not isinstance(key, str) or not key:
        raise SchemaError('schema keys must be non-empty strings, got %r' % (key,))
    rule = {} if rule is None else rule
    if not isinstance(rule, dict):
        raise SchemaError('%s: the rule must be a mapping' % where)
    bad = set(rule) - RULE_KEYS
    if bad:
        raise SchemaError(
            '%s: unknown rule entries %s (known: %s)'
            % (where, ', '.join(sorted(map(str, bad))), ', '.join(sorted(RULE_KEYS)))
        )
    kind = rule.get('type', 'str')
    if kind not in TYPES:
        raise SchemaError('%s: unknown type %r (types: %s)' % (where, kind, ', '.join(TYPES)))
    if 'choices' in rule and not isinstance(rule['choices'], list):
        raise SchemaError('%s: choices must be a list' % where)
    if 'pattern' in rule:
        try:
            re.compile(rule['pattern'])
        except (re.error, TypeError) as exc:
            raise SchemaError('%s: pattern is not a regular expression (%s)' % (where, exc)) from None
    for bound in ('min', 'max'):
        if bound in rule:
            _number(rule[bound], '%s: %s' % (where, bound))
    for flag in ('required', 'secret'):
        if flag in rule and not isinstance(rule[flag], bool):
            raise SchemaError('%s: %s must be true or false' % (where, flag))
    return dict(rule, type=kind)


def _cross_rule(number, rule):
    """One cross-field rule, compiled: (expression, keys, message)."""
    where = 'schema rule %d' % number
    if not isinstance(rule, dict) or not isinstance(rule.get('that'), str):
        raise SchemaError('%s: a rule is a mapping with "that" (a JMESPath expression)' % where)
    if not HAS_JMESPATH:
        raise SchemaError('%s: cross-field rules need the jmespath Python library' % where)
    try:
        expression = jmespath.compile(rule['that'])
    except jmespath.exceptions.JMESPathError as exc:
        raise SchemaError('%s: "that" is not a JMESPath expression: %s' % (where, exc)) from None
    rule_keys = rule.get('keys', [])
    if not isinstance(rule_keys, list) or not all(isinstance(k, str) for k in rule_keys):
        raise SchemaError('%s: keys must be a list of key names' % where)
    message = rule.get('message', 'rule "%s" does not hold' % rule['that'])
    if not isinstance(message, str):
        raise SchemaError('%s: message must be a string' % where)
    return expression, rule_keys, message


def load_schema(schema):
    """The schema, checked: every problem of the schema raises SchemaError naming where it is."""
    if not isinstance(schema, dict):
        raise SchemaError(
            'the schema must be a mapping with "keys" (and optionally "rules"), got %s' % type(schema).__name__
        )
    unknown = set(schema) - SCHEMA_KEYS
    if unknown:
        raise SchemaError(
            'unknown schema entries: %s (known: %s)'
            % (', '.join(sorted(map(str, unknown))), ', '.join(sorted(SCHEMA_KEYS)))
        )
    keys = schema.get('keys', {})
    if not isinstance(keys, dict):
        raise SchemaError('schema "keys" must be a mapping of key -> rule')
    rules = schema.get('rules', [])
    if not isinstance(rules, list):
        raise SchemaError('schema "rules" must be a list')
    additional = schema.get('additional_keys', True)
    if not isinstance(additional, bool):
        raise SchemaError('schema "additional_keys" must be true or false')
    secrets = schema.get('secrets', 'flag')
    if secrets not in ('flag', 'ignore'):
        raise SchemaError('schema "secrets" must be flag or ignore')
    return {
        'keys': {key: _key_rule(key, rule) for key, rule in keys.items()},
        'rules': [_cross_rule(number, rule) for number, rule in enumerate(rules, 1)],
        'additional_keys': additional,
        'secrets': secrets,
    }


def parse_env(text, filename='-'):
    """``KEY=VALUE`` lines (``export`` allowed, quotes removed, ``#`` comments): (dict, violations)."""
    data, violations = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        match = ENV_LINE.match(stripped)
        if not match:
            violations.append({'file': filename, 'key': 'line %d' % number, 'reason': 'not a KEY=VALUE line'})
            continue
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
            value = value[1:-1]
        elif ' #' in value:
            value = value.split(' #', 1)[0].rstrip()
        if key in data:
            violations.append({'file': filename, 'key': key, 'reason': 'set twice (line %d)' % number})
        data[key] = value
    return data, violations


_MISSING = object()


def lookup(config, key):
    """The value of a key: the key itself, else a dotted path into nested mappings; _MISSING when absent."""
    if key in config:
        return config[key]
    node = config
    for part in key.split('.'):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def flatten(config, prefix=''):
    """Dotted key paths of the leaves (mappings are walked, lists are leaves)."""
    out = {}
    for key, value in config.items():
        name = '%s%s' % (prefix, key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def _as_text(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return '' if value is None else str(value)


def check_value(kind, value):  # noqa: PLR0911 - one answer per type
    """The reason a value is not of a type, or None."""
    text = _as_text(value).strip()
    if kind == 'str':
        return None if isinstance(value, (str, int, float)) else 'must be text, got %s' % type(value).__name__
    if kind in ('list', 'dict'):
        expected = list if kind == 'list' else dict
        return None if isinstance(value, expected) else 'must be a %s, got %s' % (kind, type(value).__name__)
    if isinstance(value, (list, dict)):
        return 'must be a single %s value, got a %s' % (kind, type(value).__name__)
    if kind == 'bool':
        return None if text.lower() in TRUE + FALSE else 'must be a boolean (true/false, yes/no, on/off, 1/0)'
    if kind == 'int':
        return None if re.match(r'^[+-]?\d+$', text) else 'must be an integer'
    if kind == 'float':
        try:
            float(text)
        except ValueError:
            return 'must be a number'
        return None
    if kind == 'port':
        return None if text.isdigit() and 1 <= int(text) <= 65535 else 'must be a port number (1-65535)'
    if kind == 'url':
        return None if URL.match(text) else 'must be a URL (scheme://host[:port][/path])'
    if kind == 'duration':
        return None if DURATION.match(text) else 'must be a duration (90, 30s, 5m, 1h30m, 250ms, 7d)'
    if kind == 'size':
        return None if SIZE.match(text) else 'must be a size (512, 64k, 10MB, 1GiB)'
    if kind == 'email':
        return None if EMAIL.match(text) and len(text) <= 254 else 'must be an e-mail address'
    raise SchemaError('unknown type %r' % kind)  # pragma: no cover - load_schema refuses it


def numeric(kind, value):
    text = _as_text(value).strip()
    try:
        return float(text) if kind in ('int', 'float', 'port') else None
    except ValueError:  # pragma: no cover - type checked before
        return None


def secret_reason(key, value):
    """Why a plain configuration value looks like a secret, or None. Never quotes the value."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return None
    text = str(value).strip()
    for what, pattern in SECRET_VALUES:
        if pattern.search(text):
            return 'looks like %s in plain configuration; deliver it as a secret (secret_file) instead' % what
    if SECRET_NAME.search(key.rsplit('.', 1)[-1]) and not REFERENCE.match(text) and len(text) >= 6:
        return (
            'holds a value and its name says it is a secret; deliver it as a secret (secret_file) or mark '
            'the key secret: true in the schema'
        )
    return None


def validate(config, schema, filename='-'):
    """Every violation of ``config`` (a mapping) against a schema from load_schema, in a stable order."""
    violations = []

    def add(key, reason):
        violations.append({'file': filename, 'key': key, 'reason': reason})

    if not isinstance(config, dict):
        add('(top)', 'the configuration must be a mapping of keys, got %s' % type(config).__name__)
        return violations
    flat = flatten(config)
    for key, rule in schema['keys'].items():
        value = lookup(config, key)
        if value is _MISSING or value is None or (isinstance(value, str) and value == ''):
            if rule.get('required'):
                add(key, 'is required but %s' % ('missing' if value is _MISSING else 'empty'))
            continue
        reason = check_value(rule['type'], value)
        if reason:
            add(key, reason)
            continue
        if 'choices' in rule and _as_text(value) not in [_as_text(c) for c in rule['choices']]:
            add(key, 'must be one of %s' % ', '.join(_as_text(c) for c in rule['choices']))
        if 'pattern' in rule and not re.search(rule['pattern'], _as_text(value)):
            add(key, 'does not match the pattern %s' % rule['pattern'])
        number = numeric(rule['type'], value)
        if number is None and rule['type'] in ('str', 'list', 'dict'):
            number = len(value) if isinstance(value, (list, dict)) else len(_as_text(value))
        if 'min' in rule and number is not None and number < rule['min']:
            add(
                key,
                'must be at least %s%s' % (rule['min'], '' if numeric(rule['type'], value) is not None else ' long'),
            )
        if 'max' in rule and number is not None and number > rule['max']:
            add(
                key, 'must be at most %s%s' % (rule['max'], '' if numeric(rule['type'], value) is not None else ' long')
            )
    if not schema['additional_keys']:
        for key in sorted(flat):
            if key not in schema['keys'] and not any(key.startswith(k + '.') for k in schema['keys']):
                add(key, 'is not a key the schema knows')
    if schema['secrets'] == 'flag':
        for key in sorted(flat):
            if schema['keys'].get(key, {}).get('secret'):
                continue
            reason = secret_reason(key, flat[key])
            if reason:
                add(key, reason)
    for expression, keys, message in schema['rules']:
        try:
            held = expression.search(config)
        except jmespath.exceptions.JMESPathError as exc:
            add(', '.join(keys) or '(rule)', '%s (the rule could not be evaluated: %s)' % (message, type(exc).__name__))
            continue
        if not held:
            add(', '.join(keys) or '(rule)', message)
    return violations


def summary(violations):
    """One message listing every violation."""
    return '%d configuration violation%s: %s' % (
        len(violations),
        '' if len(violations) == 1 else 's',
        '; '.join('%s: %s %s' % (v['file'], v['key'], v['reason']) for v in violations),
    )
