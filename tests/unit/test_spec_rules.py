"""#16 item 12: a rule that selects no cell (a typo) is an error with "did you mean", not a silent no-op."""

from __future__ import annotations

import pytest

from console.experiment.loader import SpecError, load_experiment
from tests.unit.test_spec import BASE

TWO_CONTEXTS = BASE.replace('contexts = [{ label = "short", tokens = 128 }]',
                            'contexts = [{ label = "short", tokens = 128 }, { label = "8k", tokens = 2048 }]')


def problems_of(write_toml, text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_experiment(write_toml(text))
    return [str(p) for p in info.value.problems]


CASES = [
    (BASE + '\n[[overrides]]\nmatch = { precision = "fp9" }\nserving = { max_num_seqs = 4 }\n',
     "exp.toml:28: overrides[0].match.precision: this override matches no cell: no precision is 'fp9'; "
     "did you mean 'fp8'?"),
    (TWO_CONTEXTS + '\n[cells]\nexclude = [{ context = "8K" }]\n',
     "exp.toml:28: cells.exclude[0].context: this exclude rule matches no cell: no context is '8K'; "
     "did you mean '8k'?"),
    (BASE + '\n[cells]\nexclude = [{ technique = "mtp-k4" }]\n', "no technique is 'mtp-k4'; did you mean 'mtp-k3'?"),
    (BASE + '\n[cells]\nexclude = [{ technique = "ar", concurrency = 8 }]\n', "no concurrency is 8 (concurrency values: 1, 4)"),
    (BASE + '\n[cells]\nexclude = [{ technique = "ar", method = "mtp" }]\n',
     "no cell has technique = 'ar' and method = 'mtp' together"),
    # An override that only reaches excluded cells reaches no cell.
    (BASE + '\n[cells]\nexclude = [{ concurrency = 4 }]\n\n[[overrides]]\nmatch = { concurrency = 4 }\n'
     'serving = { max_num_seqs = 4 }\n', "overrides[0].match.concurrency: this override matches no cell"),
    (BASE + '\n[[cells.explicit]]\nmodel = "m"\ntechnique = "ar"\ncontext = "short"\nconcurrency = 1\n'
     '[cells]\nexclude = [{ technique = "ar" }]\n', "exclude is ignored when `explicit` lists the cells"),
    (BASE + '\n[[guide]]\nname = "g"\nobjective = "max_speed"\ncontext = "shrot"\n',
     "exp.toml:30: guide[0].context: no context 'shrot'; did you mean 'short'?"),
    (BASE + '\n[[benchmarks]]\nid = "gpqa"\nframework = "lm-eval"\ntask = "gpqa_diamond"\noptions = 4\n'
     '\n[[guide]]\nname = "g"\nobjective = "max_score"\nbenchmark = "gqpa"\n',
     "guide[0].benchmark: no benchmark 'gqpa'; did you mean 'gpqa'?"),
]


@pytest.mark.parametrize("text,fragment", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_rule_that_selects_nothing_is_an_error(write_toml, text, fragment) -> None:
    problems = problems_of(write_toml, text)
    assert any(fragment in p for p in problems), problems


def test_rules_that_select_something_still_pass(write_toml) -> None:
    text = (TWO_CONTEXTS + '\n[cells]\nexclude = [{ context = "8k", concurrency = 4 }]\n'
            '\n[[overrides]]\nmatch = { technique = "mtp*" }\nserving = { max_num_seqs = 4 }\n'
            '\n[[benchmarks]]\nid = "gpqa"\nframework = "lm-eval"\ntask = "gpqa_diamond"\noptions = 4\n'
            '\n[[guide]]\nname = "g"\nobjective = "max_score"\nbenchmark = "GPQA_diamond"\ncontext = "8k"\n')
    exp = load_experiment(write_toml(text))
    assert len(exp.cells) == 6
