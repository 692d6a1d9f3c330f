"""International destinations of the demo tariff: ISO 3166 code, E.164 country code(s), name, rate group.

Rate groups: A (EU/EEA, UK, Switzerland), B (North America and other European), C (rest of world),
D (remote and premium-cost destinations). Countries sharing a country code are told apart by longer prefixes
(NANP ``1`` vs ``1242`` Bahamas; ``7`` Russia vs ``76``/``77`` Kazakhstan), which the longest-prefix match
resolves.
"""

from __future__ import annotations

_RAW = """
AD 376 Andorra B|AE 971 United Arab Emirates C|AF 93 Afghanistan D|AG 1268 Antigua and Barbuda C|AI 1264 Anguilla C
AL 355 Albania B|AM 374 Armenia C|AO 244 Angola C|AR 54 Argentina C|AS 1684 American Samoa D|AT 43 Austria A
AU 61 Australia C|AW 297 Aruba C|AZ 994 Azerbaijan C|BA 387 Bosnia and Herzegovina B|BB 1246 Barbados C
BD 880 Bangladesh C|BE 32 Belgium A|BF 226 Burkina Faso C|BG 359 Bulgaria A|BH 973 Bahrain C|BI 257 Burundi D
BJ 229 Benin C|BM 1441 Bermuda C|BN 673 Brunei C|BO 591 Bolivia C|BR 55 Brazil C|BS 1242 Bahamas C|BT 975 Bhutan D
BW 267 Botswana C|BY 375 Belarus B|BZ 501 Belize C|CA 1204,1403,1416,1514,1604,1613,1647,1778,1905 Canada B
CD 243 DR Congo D|CF 236 Central African Republic D|CG 242 Congo C|CH 41 Switzerland A|CI 225 Ivory Coast C
CK 682 Cook Islands D|CL 56 Chile C|CM 237 Cameroon C|CN 86 China C|CO 57 Colombia C|CR 506 Costa Rica C
CU 53 Cuba D|CV 238 Cape Verde C|CW 5999 Curacao C|CY 357 Cyprus A|CZ 420 Czechia A|DE 49 Germany A
DJ 253 Djibouti D|DK 45 Denmark A|DM 1767 Dominica C|DO 1809,1829,1849 Dominican Republic C|DZ 213 Algeria C
EC 593 Ecuador C|EE 372 Estonia A|EG 20 Egypt C|ER 291 Eritrea D|ES 34 Spain A|ET 251 Ethiopia C|FI 358 Finland A
FJ 679 Fiji D|FK 500 Falkland Islands D|FM 691 Micronesia D|FO 298 Faroe Islands B|GA 241 Gabon C
GB 44 United Kingdom A|GD 1473 Grenada C|GE 995 Georgia C|GF 594 French Guiana A|GH 233 Ghana C|GI 350 Gibraltar B
GL 299 Greenland D|GM 220 Gambia C|GN 224 Guinea C|GP 590 Guadeloupe A|GQ 240 Equatorial Guinea D|GR 30 Greece A
GT 502 Guatemala C|GU 1671 Guam D|GW 245 Guinea-Bissau D|GY 592 Guyana C|HK 852 Hong Kong C|HN 504 Honduras C
HR 385 Croatia A|HT 509 Haiti D|HU 36 Hungary A|ID 62 Indonesia C|IE 353 Ireland A|IL 972 Israel C|IN 91 India C
IQ 964 Iraq C|IR 98 Iran C|IS 354 Iceland A|IT 39 Italy A|JM 1876 Jamaica C|JO 962 Jordan C|JP 81 Japan C
KE 254 Kenya C|KG 996 Kyrgyzstan C|KH 855 Cambodia C|KI 686 Kiribati D|KM 269 Comoros D|KN 1869 Saint Kitts and Nevis C
KP 850 North Korea D|KR 82 South Korea C|KW 965 Kuwait C|KY 1345 Cayman Islands C|KZ 76,77 Kazakhstan C
LA 856 Laos C|LB 961 Lebanon C|LC 1758 Saint Lucia C|LI 423 Liechtenstein A|LK 94 Sri Lanka C|LR 231 Liberia C
LS 266 Lesotho C|LT 370 Lithuania A|LU 352 Luxembourg A|LV 371 Latvia A|LY 218 Libya C|MA 212 Morocco C
MC 377 Monaco B|MD 373 Moldova B|ME 382 Montenegro B|MG 261 Madagascar C|MH 692 Marshall Islands D
MK 389 North Macedonia B|ML 223 Mali C|MM 95 Myanmar C|MN 976 Mongolia C|MO 853 Macau C|MQ 596 Martinique A
MR 222 Mauritania C|MS 1664 Montserrat C|MT 356 Malta A|MU 230 Mauritius C|MV 960 Maldives D|MW 265 Malawi C
MX 52 Mexico C|MY 60 Malaysia C|MZ 258 Mozambique C|NA 264 Namibia C|NC 687 New Caledonia D|NE 227 Niger C
NG 234 Nigeria C|NI 505 Nicaragua C|NL 31 Netherlands A|NO 47 Norway A|NP 977 Nepal C|NR 674 Nauru D|NU 683 Niue D
NZ 64 New Zealand C|OM 968 Oman C|PA 507 Panama C|PE 51 Peru C|PF 689 French Polynesia D|PG 675 Papua New Guinea D
PH 63 Philippines C|PK 92 Pakistan C|PL 48 Poland A|PM 508 Saint Pierre and Miquelon B|PR 1787,1939 Puerto Rico B
PS 970 Palestine C|PT 351 Portugal A|PW 680 Palau D|PY 595 Paraguay C|QA 974 Qatar C|RE 262 Reunion A
RO 40 Romania A|RS 381 Serbia B|RU 7 Russia C|RW 250 Rwanda C|SA 966 Saudi Arabia C|SB 677 Solomon Islands D
SC 248 Seychelles C|SD 249 Sudan C|SE 46 Sweden A|SG 65 Singapore C|SH 290 Saint Helena D|SI 386 Slovenia A
SK 421 Slovakia A|SL 232 Sierra Leone C|SM 378 San Marino B|SN 221 Senegal C|SO 252 Somalia D|SR 597 Suriname C
SS 211 South Sudan D|ST 239 Sao Tome and Principe D|SV 503 El Salvador C|SX 1721 Sint Maarten C|SY 963 Syria C
SZ 268 Eswatini C|TC 1649 Turks and Caicos C|TD 235 Chad D|TG 228 Togo C|TH 66 Thailand C|TJ 992 Tajikistan C
TK 690 Tokelau D|TL 670 Timor-Leste D|TM 993 Turkmenistan C|TN 216 Tunisia C|TO 676 Tonga D|TR 90 Turkey B
TT 1868 Trinidad and Tobago C|TV 688 Tuvalu D|TW 886 Taiwan C|TZ 255 Tanzania C|UA 380 Ukraine B|UG 256 Uganda C
US 1 United States B|UY 598 Uruguay C|UZ 998 Uzbekistan C|VC 1784 Saint Vincent and the Grenadines C
VE 58 Venezuela C|VG 1284 British Virgin Islands C|VI 1340 US Virgin Islands C|VN 84 Vietnam C|VU 678 Vanuatu D
WF 681 Wallis and Futuna D|WS 685 Samoa D|YE 967 Yemen D|YT 262269,262639 Mayotte A|ZA 27 South Africa C
ZM 260 Zambia C|ZW 263 Zimbabwe C|BQ 599 Caribbean Netherlands C|XK 383 Kosovo B|IO 246 Diego Garcia D
"""


def destinations() -> list[tuple[str, list[str], str, str]]:
    """(ISO code, prefixes, name, rate group) of every international destination."""
    out = []
    for item in _RAW.replace("\n", "|").split("|"):
        item = item.strip()
        if not item:
            continue
        iso, prefixes, rest = item.split(" ", 2)
        name, group = rest.rsplit(" ", 1)
        out.append((iso, prefixes.split(","), name, group))
    return out


#: visited countries by roaming zone (EU/EEA roam like at home)
ROAMING_EU = ("AT BE BG HR CY CZ DK EE FI DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GP MQ GF "
              "RE YT").split()
ROAMING_WORLD_1 = "GB CH US CA TR MA TN AD MC SM RS ME AL BA MK UA MD IL".split()
ROAMING_WORLD_2 = "AU NZ JP KR CN HK SG TH VN IN BR AR MX CL ZA EG AE QA SA".split()
