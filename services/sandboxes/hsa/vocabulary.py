"""Word lists the HSA sandbox draws units from: regions, municipalities, hospitals, unit kinds."""

from __future__ import annotations

from dataclasses import dataclass

# Municipality and county codes are the official SCB codes; coordinates are rough town centres.
# Verksamhetskoder (businessClassificationCode) and careType values are illustrative: the national
# HSA code lists decide what is valid. Hospital names are real; their addresses here are invented.


@dataclass(frozen=True)
class Region:
    """A region: the care provider of its own units and the owner of its HSA directory."""

    name: str
    org_no: str
    care_giver_hsa_id: str
    county_code: str
    county_name: str
    weight: float


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    lat: float
    lon: float
    postal_prefix: str  # first three digits of its postal codes
    localities: tuple[str, ...]


@dataclass(frozen=True)
class Hospital:
    name: str
    municipality: str  # municipality code
    street: str


@dataclass(frozen=True)
class UnitKind:
    """A kind of unit: name prefix and the HSA codes that go with it."""

    name: str
    business_classification: str
    business_type: str  # 01 hospital, 02 health centre, 03 remote unit
    care_type: str  # 01 outpatient, 02 inpatient, 03 home care (illustrative)
    public: bool  # shown on 1177 (hsaDestinationIndicator 03)


STOCKHOLM = Region(
    "Region Stockholm", "2321000016", "SE2321000016-1000", "01", "Stockholms län", 0.45
)
VASTRA_GOTALAND = Region(
    "Västra Götalandsregionen",
    "2321000131",
    "SE2321000131-E000000000001",
    "14",
    "Västra Götalands län",
    0.35,
)
SKANE = Region("Region Skåne", "2321000255", "SE2321000255-O00001", "12", "Skåne län", 0.20)
REGIONS = (STOCKHOLM, VASTRA_GOTALAND, SKANE)
REGION_WEIGHTS = tuple(region.weight for region in REGIONS)

_STOCKHOLM_DISTRICTS = (
    "Tallkrogen", "Farsta", "Skärholmen", "Rinkeby", "Kungsholmen", "Södermalm", "Östermalm",
    "Vasastan", "Bagarmossen", "Hökarängen", "Liljeholmen", "Hässelby", "Vällingby", "Spånga",
    "Gubbängen", "Bromma", "Enskede", "Skarpnäck", "Älvsjö", "Hagsätra", "Högdalen", "Kista",
    "Tensta", "Årsta", "Hornstull", "Fruängen",
)  # fmt: skip

_GOTEBORG_DISTRICTS = (
    "Majorna", "Frölunda", "Hisingen", "Angered", "Biskopsgården", "Gamlestaden", "Kortedala",
    "Linnéstaden", "Högsbo", "Torslanda", "Backa", "Guldheden", "Askim", "Bergsjön", "Lundby",
)  # fmt: skip

_MALMO_DISTRICTS = (
    "Rosengård", "Limhamn", "Husie", "Kirseberg", "Fosie", "Oxie", "Möllevången",
    "Västra Hamnen", "Hyllie", "Bunkeflostrand",
)  # fmt: skip

_M = Municipality
MUNICIPALITIES: dict[str, tuple[Municipality, ...]] = {
    "01": (
        _M("0114", "Upplands Väsby", 59.518, 17.911, "194", ("Runby", "Vilunda")),
        _M("0115", "Vallentuna", 59.534, 18.078, "186", ("Vallentuna centrum",)),
        _M("0117", "Österåker", 59.481, 18.299, "184", ("Åkersberga",)),
        _M("0120", "Värmdö", 59.312, 18.541, "134", ("Gustavsberg", "Hemmesta")),
        _M("0123", "Järfälla", 59.423, 17.834, "175", ("Jakobsberg", "Barkarby", "Viksjö")),
        _M("0125", "Ekerö", 59.291, 17.801, "178", ("Ekerö centrum",)),
        _M("0126", "Huddinge", 59.236, 17.982, "141", ("Flemingsberg", "Skogås", "Trångsund")),
        _M("0127", "Botkyrka", 59.201, 17.830, "147", ("Tumba", "Alby", "Fittja", "Hallunda")),
        _M("0136", "Haninge", 59.168, 18.143, "136", ("Handen", "Jordbro", "Brandbergen")),
        _M("0138", "Tyresö", 59.244, 18.228, "135", ("Tyresö centrum", "Trollbäcken")),
        _M("0160", "Täby", 59.444, 18.069, "183", ("Gribbylund", "Näsby park")),
        _M("0162", "Danderyd", 59.400, 18.033, "182", ("Djursholm", "Stocksund")),
        _M("0163", "Sollentuna", 59.428, 17.951, "191", ("Tureberg", "Rotebro", "Edsberg")),
        _M("0180", "Stockholm", 59.329, 18.069, "1", _STOCKHOLM_DISTRICTS),
        _M("0181", "Södertälje", 59.195, 17.626, "151", ("Järna", "Hovsjö", "Ronna")),
        _M("0182", "Nacka", 59.310, 18.164, "131", ("Orminge", "Fisksätra", "Saltsjöbaden")),
        _M("0183", "Sundbyberg", 59.361, 17.972, "172", ("Hallonbergen", "Rissne")),
        _M("0184", "Solna", 59.360, 18.001, "171", ("Råsunda", "Hagalund")),
        _M("0186", "Lidingö", 59.366, 18.133, "181", ("Lidingö centrum",)),
        _M("0188", "Norrtälje", 59.758, 18.705, "761", ("Norrtälje", "Rimbo", "Hallstavik")),
        _M("0191", "Sigtuna", 59.617, 17.724, "195", ("Märsta", "Rosersberg")),
        _M("0192", "Nynäshamn", 58.903, 17.948, "149", ("Nynäshamn",)),
    ),
    "14": (
        _M("1480", "Göteborg", 57.708, 11.974, "41", _GOTEBORG_DISTRICTS),
        _M("1481", "Mölndal", 57.656, 12.013, "431", ("Mölndal", "Kållered", "Lindome")),
        _M("1482", "Kungälv", 57.871, 11.980, "442", ("Kungälv", "Ytterby")),
        _M("1401", "Härryda", 57.660, 12.120, "435", ("Mölnlycke", "Landvetter")),
        _M("1402", "Partille", 57.739, 12.106, "433", ("Partille", "Sävedalen")),
        _M("1440", "Ale", 57.927, 12.070, "449", ("Nödinge", "Älvängen")),
        _M("1441", "Lerum", 57.770, 12.269, "443", ("Lerum", "Gråbo")),
        _M("1485", "Uddevalla", 58.349, 11.938, "451", ("Uddevalla",)),
        _M("1487", "Vänersborg", 58.380, 12.323, "462", ("Vänersborg",)),
        _M("1488", "Trollhättan", 58.283, 12.289, "461", ("Lextorp", "Sylte")),
        _M("1489", "Alingsås", 57.930, 12.533, "441", ("Alingsås",)),
        _M("1490", "Borås", 57.721, 12.940, "50", ("Norrby", "Hässleholmen", "Sjöbo")),
        _M("1494", "Lidköping", 58.505, 13.157, "531", ("Lidköping",)),
        _M("1496", "Skövde", 58.390, 13.846, "541", ("Skövde",)),
        _M("1499", "Falköping", 58.173, 13.551, "521", ("Falköping",)),
    ),
    "12": (
        _M("1280", "Malmö", 55.605, 13.004, "21", _MALMO_DISTRICTS),
        _M("1281", "Lund", 55.705, 13.191, "22", ("Nöbbelöv", "Södra Sandby", "Dalby")),
        _M("1283", "Helsingborg", 56.046, 12.694, "25", ("Drottninghög", "Råå", "Ödåkra")),
        _M("1282", "Landskrona", 55.870, 12.830, "261", ("Landskrona",)),
        _M("1284", "Höganäs", 56.200, 12.557, "263", ("Höganäs",)),
        _M("1285", "Eslöv", 55.839, 13.304, "241", ("Eslöv",)),
        _M("1286", "Ystad", 55.430, 13.820, "271", ("Ystad",)),
        _M("1287", "Trelleborg", 55.376, 13.157, "231", ("Trelleborg",)),
        _M("1290", "Kristianstad", 56.031, 14.156, "291", ("Kristianstad", "Åhus", "Tollarp")),
        _M("1292", "Ängelholm", 56.243, 12.862, "262", ("Ängelholm",)),
        _M("1293", "Hässleholm", 56.159, 13.766, "281", ("Hässleholm",)),
        _M("1233", "Vellinge", 55.472, 13.019, "235", ("Vellinge", "Höllviken")),
        _M("1231", "Burlöv", 55.637, 13.085, "232", ("Arlöv", "Åkarp")),
    ),
}
MUNICIPALITY_BY_CODE = {m.code: m for ms in MUNICIPALITIES.values() for m in ms}

HOSPITALS: dict[str, tuple[Hospital, ...]] = {
    "01": (
        Hospital("Södersjukhuset", "0180", "Sjukhusbacken 10"),
        Hospital("Karolinska Universitetssjukhuset Solna", "0184", "Eugeniavägen 3"),
        Hospital("Karolinska Universitetssjukhuset Huddinge", "0126", "Hälsovägen 13"),
        Hospital("Danderyds sjukhus", "0162", "Mörbygårdsvägen 5"),
        Hospital("S:t Görans sjukhus", "0180", "S:t Göransplan 1"),
        Hospital("Södertälje sjukhus", "0181", "Rosenborgsgatan 6"),
        Hospital("Norrtälje sjukhus", "0188", "Lasarettsvägen 5"),
    ),
    "14": (
        Hospital("Sahlgrenska Universitetssjukhuset", "1480", "Blå stråket 5"),
        Hospital("Östra sjukhuset", "1480", "Diagnosvägen 11"),
        Hospital("Mölndals sjukhus", "1481", "Göteborgsvägen 31"),
        Hospital("Södra Älvsborgs sjukhus", "1490", "Brämhultsvägen 53"),
        Hospital("NU-sjukvården Uddevalla sjukhus", "1485", "Sjukhusvägen 2"),
        Hospital("Skaraborgs sjukhus Skövde", "1496", "Lövängsvägen 1"),
    ),
    "12": (
        Hospital("Skånes universitetssjukhus Lund", "1281", "Entrégatan 7"),
        Hospital("Skånes universitetssjukhus Malmö", "1280", "Carl Bertil Laurells gata 9"),
        Hospital("Helsingborgs lasarett", "1283", "Södra Vallgatan 5"),
        Hospital("Centralsjukhuset Kristianstad", "1290", "J A Hedlunds väg 5"),
        Hospital("Ystads lasarett", "1286", "Kristianstadsvägen 3"),
    ),
}

_K = UnitKind
# (clinic at the hospital, its outpatient clinic, verksamhetskod)
CLINICS = (
    ("Akutkliniken", "Akutmottagning", "1010"),
    ("Kirurgkliniken", "Kirurgmottagning", "1020"),
    ("Ortopedkliniken", "Ortopedmottagning", "1030"),
    ("Medicinkliniken", "Medicinmottagning", "1040"),
    ("Kvinnokliniken", "Gynekologmottagning", "1050"),
    ("Barn- och ungdomskliniken", "Barnakutmottagning", "1060"),
    ("Infektionskliniken", "Infektionsmottagning", "1070"),
    ("Hjärtkliniken", "Hjärtmottagning", "1080"),
    ("Geriatriska kliniken", "Minnesmottagning", "1090"),
    ("Psykiatriska kliniken", "Psykiatrisk akutmottagning", "1200"),
    ("Onkologiska kliniken", "Onkologimottagning", "1210"),
    ("Ögonkliniken", "Ögonmottagning", "1220"),
    ("Öron-näsa-halskliniken", "Öron-näsa-halsmottagning", "1230"),
    ("Neurologiska kliniken", "Neurologmottagning", "1240"),
)

# Top-level units outside hospitals, with their weights.
LOCAL_UNITS: tuple[tuple[UnitKind, float], ...] = (
    (_K("Vårdcentral", "1100", "02", "01", True), 0.42),
    (_K("Folktandvården", "1500", "02", "01", True), 0.09),
    (_K("Fysioterapi", "1300", "02", "01", True), 0.09),
    (_K("Psykiatrisk öppenvårdsmottagning", "1201", "02", "01", True), 0.07),
    (_K("Ungdomsmottagning", "1105", "02", "01", True), 0.06),
    (_K("Närakut", "1011", "02", "01", True), 0.05),
    (_K("Hemsjukvård", "1400", "03", "03", True), 0.05),
    (_K("Mobil läkarenhet", "1401", "03", "03", False), 0.03),
    (_K("Hudmottagning", "1250", "02", "01", True), 0.05),
    (_K("Barnavårdscentral", "1102", "02", "01", True), 0.09),
)
LOCAL_WEIGHTS = tuple(weight for _, weight in LOCAL_UNITS)

# Sub-units of a local unit (a health centre's child and maternity care, its teams …).
SUB_UNITS = (
    _K("Barnavårdscentral", "1102", "02", "01", True),
    _K("Mödravårdscentral", "1103", "02", "01", True),
    _K("Diabetesmottagning", "1104", "02", "01", True),
    _K("Hemsjukvårdsteam", "1400", "03", "03", False),
    _K("Rehabmottagning", "1301", "02", "01", True),
    _K("Astma- och KOL-mottagning", "1106", "02", "01", True),
)

STREET_STEMS = (
    "Tall", "Björk", "Ek", "Lind", "Ström", "Kyrk", "Skol", "Stor", "Järnvägs", "Hamn", "Torg",
    "Rönn", "Lönn", "Sjö", "Ängs", "Kvarn", "Åker", "Bruks", "Gran", "Mejeri", "Vårdcentrals",
)  # fmt: skip
STREET_ENDS = ("vägen", "gatan", "gränd", "backen", "stigen", "allén", "torget")

SURNAMES = (
    "Lindqvist", "Bergström", "Nyberg", "Holm", "Sandberg", "Ekström", "Forsberg", "Lundgren",
    "Wikström", "Sjöberg", "Åberg", "Hedlund", "Björklund", "Engström", "Norberg", "Dahlgren",
)  # fmt: skip
BRAND_WORDS = (
    "Kvarn", "Linné", "Ek", "Björk", "Sol", "Fyr", "Hav", "Ström", "Berg", "Dal", "Gläntan",
    "Källan", "Ankaret", "Lotsen", "Tornet", "Vallen",
)  # fmt: skip
