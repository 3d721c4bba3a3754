"""Reference data of the matching: GB/T 4754-2017 industries, Panyu towns, tags, SME size classes.

Industry codes are stored as the section letter followed by the digits of the lower levels
("H", "H62", "H621", "H6210"), so a plain prefix test selects a section, a division, a group
or a class. The embedded table names every section and every division (大类); group and class
codes (中类/小类) are checked for shape and for their division, not against the full list.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from app.organisation.catalogue import TOWNS as _TOWNS

TOWNS: tuple[str, ...] = tuple(_TOWNS)

# Section letter -> (name, first division, last division).
SECTIONS: dict[str, tuple[str, int, int]] = {
    "A": ("农、林、牧、渔业", 1, 5),
    "B": ("采矿业", 6, 12),
    "C": ("制造业", 13, 43),
    "D": ("电力、热力、燃气及水生产和供应业", 44, 46),
    "E": ("建筑业", 47, 50),
    "F": ("批发和零售业", 51, 52),
    "G": ("交通运输、仓储和邮政业", 53, 60),
    "H": ("住宿和餐饮业", 61, 62),
    "I": ("信息传输、软件和信息技术服务业", 63, 65),
    "J": ("金融业", 66, 69),
    "K": ("房地产业", 70, 70),
    "L": ("租赁和商务服务业", 71, 72),
    "M": ("科学研究和技术服务业", 73, 75),
    "N": ("水利、环境和公共设施管理业", 76, 79),
    "O": ("居民服务、修理和其他服务业", 80, 82),
    "P": ("教育", 83, 83),
    "Q": ("卫生和社会工作", 84, 85),
    "R": ("文化、体育和娱乐业", 86, 90),
    "S": ("公共管理、社会保障和社会组织", 91, 96),
    "T": ("国际组织", 97, 97),
}

DIVISIONS: dict[str, str] = {
    "01": "农业", "02": "林业", "03": "畜牧业", "04": "渔业",
    "05": "农、林、牧、渔专业及辅助性活动",
    "06": "煤炭开采和洗选业", "07": "石油和天然气开采业", "08": "黑色金属矿采选业",
    "09": "有色金属矿采选业", "10": "非金属矿采选业", "11": "开采专业及辅助性活动",
    "12": "其他采矿业",
    "13": "农副食品加工业", "14": "食品制造业", "15": "酒、饮料和精制茶制造业",
    "16": "烟草制品业", "17": "纺织业", "18": "纺织服装、服饰业",
    "19": "皮革、毛皮、羽毛及其制品和制鞋业", "20": "木材加工和木、竹、藤、棕、草制品业",
    "21": "家具制造业", "22": "造纸和纸制品业", "23": "印刷和记录媒介复制业",
    "24": "文教、工美、体育和娱乐用品制造业", "25": "石油、煤炭及其他燃料加工业",
    "26": "化学原料和化学制品制造业", "27": "医药制造业", "28": "化学纤维制造业",
    "29": "橡胶和塑料制品业", "30": "非金属矿物制品业", "31": "黑色金属冶炼和压延加工业",
    "32": "有色金属冶炼和压延加工业", "33": "金属制品业", "34": "通用设备制造业",
    "35": "专用设备制造业", "36": "汽车制造业",
    "37": "铁路、船舶、航空航天和其他运输设备制造业", "38": "电气机械和器材制造业",
    "39": "计算机、通信和其他电子设备制造业", "40": "仪器仪表制造业", "41": "其他制造业",
    "42": "废弃资源综合利用业", "43": "金属制品、机械和设备修理业",
    "44": "电力、热力生产和供应业", "45": "燃气生产和供应业", "46": "水的生产和供应业",
    "47": "房屋建筑业", "48": "土木工程建筑业", "49": "建筑安装业",
    "50": "建筑装饰、装修和其他建筑业",
    "51": "批发业", "52": "零售业",
    "53": "铁路运输业", "54": "道路运输业", "55": "水上运输业", "56": "航空运输业",
    "57": "管道运输业", "58": "多式联运和运输代理业", "59": "装卸搬运和仓储业", "60": "邮政业",
    "61": "住宿业", "62": "餐饮业",
    "63": "电信、广播电视和卫星传输服务", "64": "互联网和相关服务",
    "65": "软件和信息技术服务业",
    "66": "货币金融服务", "67": "资本市场服务", "68": "保险业", "69": "其他金融业",
    "70": "房地产业",
    "71": "租赁业", "72": "商务服务业",
    "73": "研究和试验发展", "74": "专业技术服务业", "75": "科技推广和应用服务业",
    "76": "水利管理业", "77": "生态保护和环境治理业", "78": "公共设施管理业", "79": "土地管理业",
    "80": "居民服务业", "81": "机动车、电子产品和日用产品修理业", "82": "其他服务业",
    "83": "教育",
    "84": "卫生", "85": "社会工作",
    "86": "新闻和出版业", "87": "广播、电视、电影和录音制作业", "88": "文化艺术业",
    "89": "体育", "90": "娱乐业",
    "91": "中国共产党机关", "92": "国家机构", "93": "人民政协、民主党派", "94": "社会保障",
    "95": "群众团体、社会团体和其他成员组织", "96": "基层群众自治组织及其他组织",
    "97": "国际组织",
}  # fmt: skip

_CODE = re.compile(r"([A-T])([0-9]{0,4})")


def section_of_division(division: str) -> str | None:
    """The section letter a two-digit division belongs to."""
    number = int(division)
    for letter, (_name, first, last) in SECTIONS.items():
        if first <= number <= last:
            return letter
    return None


def normalise_industry_code(raw: str) -> str:
    """Upper-case, drop spaces, and add the section letter to a bare division/class code."""
    code = raw.strip().upper().replace(" ", "")
    if code[:2].isdigit():
        letter = section_of_division(code[:2])
        if letter is not None:
            code = letter + code
    return code


def is_valid_industry_code(code: str, *, prefix: bool = True) -> bool:
    """A section, division, group or class code of GB/T 4754-2017 (`prefix`: any level).

    With `prefix=False` only a full four-digit class (小类) code is accepted.
    """
    match = _CODE.fullmatch(code)
    if match is None:
        return False
    letter, digits = match.groups()
    if len(digits) == 1 or (not prefix and len(digits) != 4):
        return False
    if not digits:
        return True
    division = digits[:2]
    return division in DIVISIONS and section_of_division(division) == letter


def industry_label(code: str) -> str:
    """The Chinese name of the most precise level the table knows."""
    if len(code) >= 3 and code[1:3] in DIVISIONS:
        return DIVISIONS[code[1:3]]
    return SECTIONS.get(code[:1], ("未知行业", 0, 0))[0]


class Tag(enum.StrEnum):
    """Enterprise qualifications matched by policies (a closed list: criteria name them)."""

    HIGH_TECH = "高新技术企业"
    SPECIALISED = "专精特新"
    TECH_SME = "科技型中小企业"
    EXPORTER = "出口企业"
    ABOVE_SCALE = "规上企业"
    LITTLE_GIANT = "专精特新小巨人"
    GAZELLE = "瞪羚企业"
    FOREIGN_INVESTED = "外商投资企业"
    TIME_HONOURED = "老字号"
    STARTUP_BY_GRADUATE = "高校毕业生创业"


TAGS: tuple[str, ...] = tuple(tag.value for tag in Tag)
# Tags are stored as a bit set: one bit per tag, in this fixed order (never reorder).
TAG_BITS: dict[str, int] = {tag: 1 << index for index, tag in enumerate(TAGS)}


# The profile fields an enterprise may declare itself, one bit each in
# `EnterpriseProfile.unverified_fields` (size_class follows the three it is computed from).
FACT_BITS: dict[str, int] = {"industry_code": 1, "employees": 2, "revenue_yuan": 4, "size_class": 8}


def tags_to_bits(tags: list[str] | tuple[str, ...] | set[str]) -> int:
    """The bit set of known tags (unknown ones are a caller error)."""
    bits = 0
    for tag in tags:
        bits |= TAG_BITS[tag]
    return bits


def bits_to_tags(bits: int | None) -> list[str] | None:
    if bits is None:
        return None
    return [tag for tag in TAGS if bits & TAG_BITS[tag]]


class SizeClass(enum.StrEnum):
    """企业规模 of the national classification (统计上大中小微型企业划分办法(2017))."""

    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"

    @property
    def label(self) -> str:
        return {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}[self.value]


SIZE_ORDER = (SizeClass.LARGE, SizeClass.MEDIUM, SizeClass.SMALL)


@dataclass(frozen=True)
class Thresholds:
    """Lower bounds of large, medium, small: employees and revenue (万元); None = not used."""

    name: str
    employees: tuple[int, int, int] | None
    revenue_wan: tuple[int, int, int] | None


# By (prefix of the industry code, most precise first). Indicators the profile does not hold
# (total assets for 建筑业, 房地产开发经营 and 租赁和商务服务业) are left out: there the class
# follows the remaining indicator, and where none remains, employees (其他未列明行业).
_THRESHOLDS: tuple[tuple[str, Thresholds], ...] = (
    ("A", Thresholds("农、林、牧、渔业", None, (20000, 500, 50))),
    ("B", Thresholds("工业", (1000, 300, 20), (40000, 2000, 300))),
    ("C", Thresholds("工业", (1000, 300, 20), (40000, 2000, 300))),
    ("D", Thresholds("工业", (1000, 300, 20), (40000, 2000, 300))),
    ("E", Thresholds("建筑业", None, (80000, 6000, 300))),
    ("F51", Thresholds("批发业", (200, 20, 5), (40000, 5000, 1000))),
    ("F52", Thresholds("零售业", (300, 50, 10), (20000, 500, 100))),
    ("G59", Thresholds("仓储业", (200, 100, 20), (30000, 1000, 100))),
    ("G60", Thresholds("邮政业", (1000, 300, 20), (30000, 2000, 100))),
    ("G", Thresholds("交通运输业", (1000, 300, 20), (30000, 3000, 200))),
    ("H", Thresholds("住宿和餐饮业", (300, 100, 10), (10000, 2000, 100))),
    ("I65", Thresholds("软件和信息技术服务业", (300, 100, 10), (10000, 1000, 50))),
    ("I", Thresholds("信息传输业", (2000, 100, 10), (100000, 1000, 100))),
    ("K7020", Thresholds("物业管理", (1000, 300, 100), (5000, 1000, 500))),
    ("K", Thresholds("房地产开发经营", None, (200000, 1000, 100))),
    ("L", Thresholds("租赁和商务服务业", (300, 100, 10), None)),
    ("", Thresholds("其他未列明行业", (300, 100, 10), None)),
)


def thresholds_for(industry_code: str) -> Thresholds:
    for prefix, thresholds in _THRESHOLDS:
        if industry_code.startswith(prefix):
            return thresholds
    raise AssertionError("the empty prefix matches every code")


def size_class(
    industry_code: str | None, employees: int | None, revenue_yuan: int | None
) -> SizeClass | None:
    """The SME size class, or None when the profile lacks what decides it.

    Large, medium and small need every indicator at or above its lower bound (else one class
    down); micro needs only one indicator below the small bound. So a missing indicator still
    decides "micro" when a known one is already below the small bound.
    """
    if not industry_code:
        return None
    t = thresholds_for(industry_code)
    indicators: list[tuple[int | None, tuple[int, int, int]]] = []
    if t.employees is not None:
        indicators.append((employees, t.employees))
    if t.revenue_wan is not None:
        revenue_wan = None if revenue_yuan is None else revenue_yuan / 10_000
        indicators.append((revenue_wan, t.revenue_wan))  # type: ignore[arg-type]
    if any(value is not None and value < bounds[2] for value, bounds in indicators):
        return SizeClass.MICRO
    if any(value is None for value, _ in indicators):
        return None
    for index, size in enumerate(SIZE_ORDER):
        if all(value >= bounds[index] for value, bounds in indicators):  # type: ignore[operator]
            return size
    return SizeClass.MICRO
