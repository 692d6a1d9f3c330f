"""Shapes of the credit-control API (a JSON mapping of Diameter Gy/Ro, RFC 4006 / 3GPP TS 32.299) and the TMF
specification files of TMF654 and TMF635.

Each JSON attribute maps to one Diameter AVP, so that a Gy front end translates one to one:

=================================  ==================================================
JSON                               Diameter AVP (code)
=================================  ==================================================
``sessionId``                      Session-Id (263)
``requestType``                    CC-Request-Type (416): INITIAL_REQUEST=1, UPDATE_REQUEST=2,
                                   TERMINATION_REQUEST=3, EVENT_REQUEST=4 (name or number)
``requestNumber``                  CC-Request-Number (415)
``serviceContextId``               Service-Context-Id (461), e.g. ``32251@3gpp.org`` (PS data)
``subscriptionId.type/.data``      Subscription-Id (443): Subscription-Id-Type (450), -Data (444)
``eventTimestamp``                 Event-Timestamp (55)
``requestedAction``                Requested-Action (436), EVENT only: DIRECT_DEBITING
``terminationCause``               Termination-Cause (295)
``serviceInformation``             Service-Information (873): ``calledParty`` (Called-Party-Address),
                                   ``visitedCountry`` (roaming info), ``visitedNetwork`` (3GPP-SGSN-MCC-MNC, 18),
                                   ``callingParty`` (Calling-Party-Address, 831), ``roleOfNode`` (829)
``multipleServicesCreditControl``  Multiple-Services-Credit-Control (456), each with
  ``ratingGroup``                  Rating-Group (432)
  ``requestedServiceUnit``         Requested-Service-Unit (437)
  ``usedServiceUnit``              Used-Service-Unit (446)
  ``grantedServiceUnit``           Granted-Service-Unit (431) (answer)
  ``validityTime``                 Validity-Time (448) (answer)
  ``finalUnitIndication``          Final-Unit-Indication (430) (answer)
  ``resultCode``                   Result-Code (268)
units: ``time``                    CC-Time (420), seconds
       ``totalOctets``             CC-Total-Octets (421); ``inputOctets`` (412), ``outputOctets`` (414)
       ``serviceSpecificUnits``    CC-Service-Specific-Units (417), e.g. SMS
=================================  ==================================================
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPEC_FILE = "TMF654-PrepayBalance-v4.0.0.swagger.json"
USAGE_SPEC_FILE = "TMF635-UsageManagement-v4.0.0.swagger.json"

REQUEST_TYPES = {1: "INITIAL_REQUEST", 2: "UPDATE_REQUEST", 3: "TERMINATION_REQUEST", 4: "EVENT_REQUEST"}
# Service-Context-Id (3GPP TS 32.299) -> usage type
SERVICE_CONTEXTS = {
    "32251@3gpp.org": "data",  # PS (GPRS/EPC) charging
    "32255@3gpp.org": "data",  # 5G converged charging (data)
    "32260@3gpp.org": "voice",  # IMS
    "32270@3gpp.org": "mms",
    "32274@3gpp.org": "sms",
    "32276@3gpp.org": "voice",  # VCS (CS voice)
}
MAX_UNITS = 2**53  # a units value the network may report (CC-Total-Octets is Unsigned64; this is ~9 PB)

Units = Annotated[int, Field(ge=0, le=MAX_UNITS)]


class ServiceUnit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: Units | None = None
    totalOctets: Units | None = None
    inputOctets: Units | None = None
    outputOctets: Units | None = None
    serviceSpecificUnits: Units | None = None

    def amount(self, usage_type: str) -> int | None:
        """The units of this usage type (seconds, bytes, count); None when absent."""
        if usage_type == "voice":
            return self.time
        if usage_type == "data":
            if self.totalOctets is not None:
                return self.totalOctets
            if self.inputOctets is not None or self.outputOctets is not None:
                return (self.inputOctets or 0) + (self.outputOctets or 0)
            return None
        return self.serviceSpecificUnits


class MultipleServicesCreditControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratingGroup: int = Field(ge=0, le=2**32 - 1)
    requestedServiceUnit: ServiceUnit | None = None
    usedServiceUnit: ServiceUnit | None = None
    #: OpenBSS extension of the mapping: grant the requested units whole or nothing (no partial grant)
    allOrNothing: bool = False


class SubscriptionId(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["END_USER_E164", "END_USER_IMSI", "END_USER_SIP_URI", "END_USER_NAI", "END_USER_PRIVATE"] = \
        "END_USER_E164"
    data: str = Field(min_length=1, max_length=64)


class ServiceInformation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calledParty: str | None = Field(None, max_length=64)
    #: Calling-Party-Address (831): who calls, for a terminating (incoming) call
    callingParty: str | None = Field(None, max_length=64)
    #: Role-Of-Node (829): an originating (outgoing, default) or terminating (incoming) call; selects the tariff's rate
    roleOfNode: Literal["ORIGINATING_ROLE", "TERMINATING_ROLE"] | None = None
    #: Called-Station-Id (AVP 30) of a data session: the access point name
    apn: str | None = Field(None, max_length=100)
    visitedCountry: str | None = Field(None, pattern=r"^[A-Za-z]{2}$")
    #: 3GPP-SGSN-MCC-MNC (AVP 18): the visited network, MCC+MNC; its roaming zone wins over the country's
    visitedNetwork: str | None = Field(None, pattern=r"^\d{5,6}$")


#: the session id prefix of usage rated in batch (``rating``): not an online session's
BATCH_SESSION_PREFIX = "cdr:"


class CreditControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sessionId: str = Field(min_length=1, max_length=255)
    requestType: Literal["INITIAL_REQUEST", "UPDATE_REQUEST", "TERMINATION_REQUEST", "EVENT_REQUEST"]
    requestNumber: int = Field(ge=0, le=2**32 - 1)
    serviceContextId: str = Field(min_length=1, max_length=64)
    subscriptionId: SubscriptionId | None = None
    eventTimestamp: datetime | None = None
    requestedAction: Literal["DIRECT_DEBITING"] | None = None
    terminationCause: str | None = Field(None, max_length=64)
    serviceInformation: ServiceInformation | None = None
    multipleServicesCreditControl: list[MultipleServicesCreditControl] = Field(default_factory=list, max_length=32)

    @field_validator("requestType", mode="before")
    @classmethod
    def _request_type(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return REQUEST_TYPES.get(value, value)
        return value

    @field_validator("sessionId")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("sessionId contains a NUL character")
        if value.startswith(BATCH_SESSION_PREFIX):
            # usage rated from files is stored under "cdr:<record key>": an online session of that name would be
            # taken for a file's record (a duplicate) and left out of the prepaid revenue
            raise ValueError(f"sessionId must not start with '{BATCH_SESSION_PREFIX}' (the usage rated from files)")
        return value

    @field_validator("multipleServicesCreditControl")
    @classmethod
    def _distinct_groups(cls, value: list[MultipleServicesCreditControl]) -> list[MultipleServicesCreditControl]:
        groups = [m.ratingGroup for m in value]
        if len(groups) != len(set(groups)):
            raise ValueError("a rating group appears twice")
        return value


class FinalUnitIndication(BaseModel):
    finalUnitAction: Literal["TERMINATE", "REDIRECT", "RESTRICT_ACCESS"] = "TERMINATE"


class MultipleServicesCreditControlAnswer(BaseModel):
    ratingGroup: int
    resultCode: int = Field(description="2001 success, 4012 credit limit reached, 5031 rating failed")
    grantedServiceUnit: ServiceUnit | None = None
    validityTime: int | None = Field(None, description="seconds the grant is held (Validity-Time)")
    quotaHoldingTime: int | None = Field(None, description="seconds of inactivity after which the network gives the "
                                                           "grant back (Quota-Holding-Time)")
    finalUnitIndication: FinalUnitIndication | None = None


class CostInformation(BaseModel):
    unitValue: Decimal = Field(description="the charge of an EVENT in currency units (exact decimal in the JSON)")
    currencyCode: str
    currencyNumericExponent: int


class CreditControlAnswer(BaseModel):
    """The answer (CCA). Documentation of the response shape; the service builds it as a plain document."""

    sessionId: str
    requestType: str
    requestNumber: int
    resultCode: int = Field(description="2001, 4010, 4012, 5002, 5004, 5005, 5030, 5031 (see the API description)")
    resultName: str
    multipleServicesCreditControl: list[MultipleServicesCreditControlAnswer] | None = None
    costInformation: CostInformation | None = None
    errorMessage: str | None = None
