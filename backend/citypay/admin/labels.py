"""Names for the codes the registry stores, in Korean and English.

Business categories are 4-digit codes of the Korean Standard Industrial Classification (KSIC
세분류) as config/cities.yaml uses them; regions are the 5-digit administrative district codes
(시군구 행정표준코드). A code without a name here is shown as the code itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    ko: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"ko": self.ko, "en": self.en}


CATEGORIES = {
    4711: Label("대형마트", "Large mart"),
    4712: Label("백화점", "Department store"),
    4719: Label("기타 종합 소매", "Other general retail"),
    4721: Label("식료품·제과 소매", "Food and bakery"),
    4722: Label("음료 소매", "Beverages"),
    4730: Label("연료 소매", "Fuel"),
    4741: Label("컴퓨터·통신기기 소매", "Computers and phones"),
    4751: Label("섬유·직물 소매", "Textiles"),
    4752: Label("철물·공구 소매", "Hardware"),
    4761: Label("서적·문구 소매", "Books and stationery"),
    4771: Label("의류 소매", "Clothing"),
    4781: Label("약국·화장품 소매", "Pharmacy and cosmetics"),
    4782: Label("꽃·화초 소매", "Florist"),
    5611: Label("음식점", "Restaurant"),
    5619: Label("간이 음식점", "Snack bar"),
    5621: Label("주점", "Bar"),
    5622: Label("카페", "Café"),
    8550: Label("학원", "Private academy"),
    8621: Label("의원", "Clinic"),
    8622: Label("치과", "Dental clinic"),
    8623: Label("한의원", "Korean medicine clinic"),
    5947: Label("선물·기념품", "Gifts and souvenirs"),  # the code the day's gift shop registers
    9124: Label("사행시설", "Gambling"),
    9611: Label("미용실", "Hair and beauty"),
    9612: Label("목욕탕", "Bathhouse"),
}

REGIONS = {
    31110: Label("울산 중구", "Jung-gu, Ulsan"),
    31140: Label("울산 남구", "Nam-gu, Ulsan"),
    31170: Label("울산 동구", "Dong-gu, Ulsan"),
    31200: Label("울산 북구", "Buk-gu, Ulsan"),
    31710: Label("울주군", "Ulju-gun"),
    41570: Label("김포시", "Gimpo-si"),
    44150: Label("공주시", "Gongju-si"),
}


def category_label(code: int | None) -> Label:
    if code is None:
        return Label("미등록", "Unregistered")
    return CATEGORIES.get(code) or Label(f"업종 {code}", f"Category {code}")


def region_label(code: int | None) -> Label:
    if code is None:
        return Label("미등록", "Unregistered")
    return REGIONS.get(code) or Label(f"지역 {code}", f"Region {code}")
