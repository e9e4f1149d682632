"""Small embedded name, street and town lists for synthetic contacts (Danish, with æ ø å).

Towns are real Danish postcodes starting 5-9 so they fall in the demo clinics' catchments
(reference/settings.yaml: LK-NORD 5xxx-6xxx, LK-SYD 7xxx-9xxx). Weights are rough relative
town sizes (derived). All names encode in CP1252 (the Danish export dialect).
"""

FIRST_F = [
    "Anne", "Mette", "Kirsten", "Hanne", "Susanne", "Lene", "Marianne", "Camilla", "Louise", "Maria",
    "Pia", "Bente", "Karen", "Tina", "Ida", "Sofie", "Emma", "Freja", "Clara", "Laura", "Lærke",
    "Åse", "Birthe", "Grethe", "Inge", "Signe", "Astrid", "Mathilde", "Ellen", "Solvej", "Bodil",
    "Søs", "Dorthe", "Kamma", "Rikke", "Malene", "Nanna", "Sørine", "Helle", "Jytte",
]
FIRST_M = [
    "Peter", "Jens", "Lars", "Michael", "Henrik", "Thomas", "Søren", "Niels", "Jørgen", "Anders",
    "Hans", "Christian", "Martin", "Morten", "Rasmus", "Mads", "Frederik", "William", "Oscar", "Noah",
    "Bjørn", "Jørn", "Poul", "Kåre", "Ove", "Erik", "Torben", "Steen", "Bo", "Ib", "Asger", "Æbbe",
    "Holger", "Knud", "Preben", "Flemming", "Jesper", "Kasper", "Malthe", "Aksel",
]
SURNAMES = [
    "Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen",
    "Rasmussen", "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Christiansen",
    "Poulsen", "Johansen", "Møller", "Mortensen", "Kjær", "Bækgaard", "Østergaard", "Dalsgård",
    "Søndergaard", "Frølund", "Grøn", "Lykkegård", "Ågaard", "Brændstrup", "Kløve", "Højer",
    "Skov", "Holm", "Lund", "Bach", "Krøyer", "Fæster", "Nørgaard", "Damgård",
]
FIRST_EN = ["James", "Emily", "Oliver", "Sarah", "George", "Hannah", "Daniel", "Grace"]
SURNAMES_EN = ["Smith", "Brown", "Taylor", "Wilson", "Evans", "Walker"]
TRICKY = [
    "Liam O'Brien",
    'Anne-Marie "Mia" Østergård',
    "Søren D'Angelo",
    'Jens "Bager" Kjær',
    "Åse Ærø-Ørsted",
    "Maja Dahl; Hansen",
]
STREETS = [
    "Vestergade", "Østergade", "Nørregade", "Søndergade", "Algade", "Kirkevej", "Skolevej",
    "Møllevej", "Bøgevej", "Egevænget", "Åboulevarden", "Fælledvej", "Kærvej", "Strandvejen",
    "Præstevænget", "Rosenhøj", "Hørvænget", "Bakkegårdsvej", "Æblehaven", "Grønnegade",
]
FLOORS = ["", "", "", ", st. tv.", ", 1. th.", ", 2. tv.", ", 3. mf."]
TOWNS = [  # (postcode, town, relative size)
    ("5000", "Odense C", 8), ("5200", "Odense V", 4), ("5500", "Middelfart", 2), ("5600", "Faaborg", 1),
    ("5700", "Svendborg", 3), ("5800", "Nyborg", 2), ("5970", "Ærøskøbing", 1), ("6000", "Kolding", 5),
    ("6100", "Haderslev", 3), ("6200", "Aabenraa", 2), ("6270", "Tønder", 1), ("6400", "Sønderborg", 3),
    ("6700", "Esbjerg", 6), ("6760", "Ribe", 1), ("7000", "Fredericia", 4), ("7100", "Vejle", 5),
    ("7400", "Herning", 4), ("7500", "Holstebro", 3), ("7700", "Thisted", 2), ("7800", "Skive", 2),
    ("8000", "Aarhus C", 9), ("8200", "Aarhus N", 5), ("8500", "Grenaa", 1), ("8600", "Silkeborg", 4),
    ("8660", "Skanderborg", 2), ("8700", "Horsens", 4), ("8800", "Viborg", 3), ("8900", "Randers C", 4),
    ("9000", "Aalborg", 8), ("9700", "Brønderslev", 1), ("9800", "Hjørring", 2), ("9900", "Frederikshavn", 2),
]
