"""Generated container names, docker style: adjective_scientist."""

from __future__ import annotations

import secrets

ADJECTIVES = """
admiring adoring agitated amazing angry awesome blissful bold boring brave busy charming
clever cool compassionate competent condescending confident cranky crazy dazzling
determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic exciting
fervent festive flamboyant focused friendly frosty funny gallant gifted goofy gracious
great happy hardcore heuristic hopeful hungry infallible inspiring intelligent interesting
jolly jovial keen kind laughing loving lucid magical modest musing mystifying naughty
nervous nice nifty nostalgic objective optimistic peaceful pedantic pensive practical
priceless quirky quizzical relaxed reverent romantic sad serene sharp silly sleepy stoic
strange stupefied suspicious sweet tender thirsty trusting unruffled upbeat vibrant
vigilant vigorous wizardly wonderful xenodochial youthful zealous zen
""".split()  # noqa: SIM905
SCIENTISTS = """
agnesi albattani allen almeida archimedes ardinghelli aryabhata austin babbage banach
bardeen bartik bassi beaver bell bhabha bhaskara black blackburn blackwell bohr booth borg
bose boyd brahmagupta brattain brown carson cerf chandrasekhar clarke colden cori cray
curie darwin davinci dijkstra dubinsky easley edison einstein elion engelbart euclid euler
faraday feistel fermat fermi feynman franklin gagarin galileo gates gauss germain goldberg
goldstine goldwasser golick goodall hamilton hawking heisenberg hermann hodgkin hoover
hopper hugle hypatia jackson jang jennings jepsen johnson joliot jones kalam kapitsa
keller kepler khorana kilby kirch knuth kowalevski lalande lamarr lamport leakey leavitt
lewin lichterman liskov lovelace lumiere mahavira mayer mccarthy mcclintock mclean meitner
mendel mestorf mirzakhani montalcini moore morse murdock napier nash neumann newton
nightingale nobel noether northcutt noyce panini pare pasteur payne perlman pike poincare
poitras ptolemy raman ramanujan ride ritchie robinson roentgen rosalind rubin saha sammet
shamir shannon shaw shirley shockley sinoussi snyder spence stallman stonebraker swanson
swartz tesla thompson torvalds turing varahamihira visvesvaraya volhard wescoff wiles
williams wilson wing wozniak wright yalow yonath
""".split()  # noqa: SIM905


def generate(taken: set[str]) -> str:
    """A random free name."""
    while True:
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SCIENTISTS)}"
        if name not in taken:
            return name
        name += str(secrets.randbelow(10))
        if name not in taken:
            return name
