"""Behavioural tests of the trained default model (models/champion), in the Made With ML sense.

- minimum functionality: clear sentences with actors absent from the seed corpus get the label;
- invariance: swapping country names does not change the labels;
- hard negatives from the labeling guide do not fire;
- the calls that guide v2 settled (domestic policy, offers, talks with armed groups; straight
  attack reports, alleged supply, training, speeches at summits, hoped-for talks).

The sentences were written for these tests and are in no training file (checked below).
"""

from __future__ import annotations

import pytest

from newsevents import paths
from newsevents.corpus import sentence_id
from newsevents.predict import Predictor

CLEAR = {
    "aid_pledge": [
        "Norway will give 30 million kroner in emergency food aid to flood victims in Malawi.",
        "The Asian Development Bank approved a $150 million loan to rebuild roads in Tonga.",
        "Brazil sent two cargo planes of medicine and tents to earthquake-hit Ecuador.",
        "Qatar promised $500 million for the reconstruction of Gaza.",
        "Denmark will deliver 19 howitzers and ammunition to the Ukrainian army.",
    ],
    "threat_attribution": [
        "Azerbaijan accused Armenian forces of shelling civilian areas near the border.",
        "The Malian government blamed jihadist militants for the ambush that killed 12 soldiers.",
        "Colombia's defence minister warned that Venezuela was arming guerrilla groups.",
        "Kenya condemned al-Shabaab for the bombing of a bus in Mandera.",
        "Rwanda accused Congo of backing the rebels who attacked its border posts.",
    ],
    "diplomatic_meeting": [
        "The foreign ministers of Peru and Chile met in Lima on Tuesday to discuss the border.",
        "The Indonesian president will travel to Canberra next month for talks with the "
        "Australian prime minister.",
        "The Nigerian leader telephoned his Ghanaian counterpart to discuss the crisis.",
        "Egypt hosted talks between Sudanese and Ethiopian officials over the dam dispute.",
        "The Vietnamese prime minister received the visiting Japanese defence minister in Hanoi.",
    ],
    "policy_shift": [
        "Argentina lifted its ban on beef exports to China.",
        "Morocco restored diplomatic relations with Iran after a six-year break.",
        "The European Union imposed new sanctions on Belarusian officials.",
        "Canada suspended arms export permits to Turkey.",
        "Mexico announced it would close its embassy in Managua.",
    ],
}


def weakness(*case: str, why: str):
    """A case today's champion gets wrong: expected to fail, and the test fails once it passes
    (strict), so a better model moves the case back among the plain ones."""
    mark = pytest.mark.xfail(strict=True, reason=f"known weakness: {why}")
    return pytest.param(*case, marks=mark)


def case_values(case) -> tuple[str, ...]:
    """The values of a plain tuple case or of a :func:`weakness` one."""
    return tuple(case.values) if hasattr(case, "values") else case


# Guide v2 decisions: sentences that must get the label.
V2_POSITIVES = [
    ("aid_pledge", "Japan said it stands ready to send water purification units to Fiji if the "
                   "flooding worsens."),
    weakness("policy_shift", "The Chilean congress passed a law raising the minimum wage by ten "
                             "percent.", why="domestic policy changes are often missed"),
    ("policy_shift", "The government declared a state of emergency and imposed a night curfew in "
                     "the capital."),
    ("diplomatic_meeting", "Government negotiators met rebel commanders in Oslo for a second "
                           "round of talks."),
]
# Guide "No" cases, with the label that must not fire.
HARD_NEGATIVES = [
    ("The UN appealed for $200 million to help drought victims in Somalia.", "aid_pledge"),
    weakness("Belgium urged the European Union to lift its sanctions on Cuba.", "policy_shift",
             why="a call on another actor to change its policy often scores as policy_shift"),
    ("Germany signed a contract to sell 40 tanks to Qatar.", "aid_pledge"),
    ("Israeli tanks shelled positions near Rafah on Monday.", "threat_attribution"),
    weakness("The minister gave a press conference in Paris on Friday.", "diplomatic_meeting",
             why="a place and an official read as a visit"),
    ("The Kenyan cabinet met in Nairobi to approve the budget.", "diplomatic_meeting"),
    weakness("The ministry said its policy on arms exports remains unchanged.", "policy_shift",
             why="'policy' words fire without a change"),
    ("Japan rejected China's demand to close its consulate in Hong Kong.", "policy_shift"),
    # guide v2 and the project guide's straight-report rule
    weakness("Police said gunmen opened fire on a bus near the border, killing four passengers.",
             "threat_attribution", why="a plain attack report with a source often scores as an "
                                       "attribution (the MUC-4 wire is full of both)"),
    ("Lithuania said Belarus had shipped rifles to the militia.", "aid_pledge"),
    ("Estonia will train 200 Ukrainian police officers this year.", "aid_pledge"),
    weakness("Speaking at the Commonwealth summit, the prime minister warned about rising debt.",
             "diplomatic_meeting", why="a speech at a summit reads as the summit itself"),
    weakness("We hope that talks between the two neighbours will resume soon.",
             "diplomatic_meeting", why="hoped-for talks read as scheduled ones"),
]
NO_EVENT = [
    "The football match between Brazil and Argentina ended in a draw.",
    "Heavy rain flooded parts of Jakarta on Sunday.",
    "Shares in Tokyo closed higher on Wednesday.",
]
SWAPS = [("Norway", "Chile"), ("Malawi", "Laos"), ("Azerbaijan", "Bolivia"),
         ("Armenian", "Paraguayan"), ("Peru", "Kenya"), ("Chile", "Tanzania"),
         ("Argentina", "Thailand"), ("China", "India"), ("Morocco", "Finland"),
         ("Iran", "Cuba"), ("Canada", "Sweden"), ("Turkey", "Egypt")]


@pytest.fixture(scope="module")
def model() -> Predictor:
    if not (paths.CHAMPION_DIR / "model.joblib").exists():
        pytest.skip("no trained default model: run `make train` (make test does it first)")
    return Predictor.load()


def test_test_sentences_are_not_training_sentences(table):
    ids = set(table["sentence_id"])  # every labeled sentence the project has
    ours = ([s for group in CLEAR.values() for s in group]
            + [case_values(case)[0] for case in HARD_NEGATIVES]
            + [case_values(case)[1] for case in V2_POSITIVES])
    assert not {sentence_id(s) for s in ours + NO_EVENT} & ids


@pytest.mark.parametrize(("label", "text"),
                         [(label, text) for label, texts in CLEAR.items() for text in texts])
def test_clear_sentences_get_their_label(model, label, text):
    [prediction] = model.predict([text])
    assert label in prediction.labels, prediction.scores


@pytest.mark.parametrize(("label", "text"), V2_POSITIVES)
def test_guide_v2_positives_get_their_label(model, label, text):
    [prediction] = model.predict([text])
    assert label in prediction.labels, prediction.scores


@pytest.mark.parametrize(("text", "label"), HARD_NEGATIVES)
def test_hard_negatives_do_not_fire(model, text, label):
    [prediction] = model.predict([text])
    assert label not in prediction.labels, prediction.scores


@pytest.mark.parametrize("text", NO_EVENT)
def test_sentences_without_events_get_no_label(model, text):
    [prediction] = model.predict([text])
    assert prediction.labels == [], prediction.scores


def test_swapping_country_names_keeps_labels(model):
    originals = [t for texts in CLEAR.values() for t in texts]
    swapped = []
    for text in originals:
        for old, new in SWAPS:
            text = text.replace(old, new)
        swapped.append(text)
    assert swapped != originals
    before = [p.labels for p in model.predict(originals)]
    after = [p.labels for p in model.predict(swapped)]
    changed = [(o, b, a) for o, b, a in zip(originals, before, after, strict=True) if b != a]
    assert not changed
