"""The vocabularies of an alarm, as TMF642 refers to them: ITU-T X.733 (event types, probable causes, perceived
severities) and 3GPP TS 32.111-2 (its extra event types, Annex A, and probable causes, Annex B)."""

from __future__ import annotations

#: X.733 8.1.1 and 3GPP TS 32.111-2 Annex A, in the lower camel case of TMF642's examples
ALARM_TYPES = frozenset({
    "communicationsAlarm", "processingErrorAlarm", "environmentalAlarm", "qualityOfServiceAlarm", "equipmentAlarm",
    "integrityViolation", "operationalViolation", "physicalViolation", "securityServiceOrMechanismViolation",
    "timeDomainViolation",
})

#: X.733 8.1.2.5 (X.721) plus the probable causes 3GPP TS 32.111-2 Annex B and M.3100 add
PROBABLE_CAUSES = frozenset({
    # X.721 / X.733
    "adapterError", "applicationSubsystemFailure", "bandwidthReduced", "callEstablishmentError",
    "communicationsProtocolError", "communicationsSubsystemFailure", "configurationOrCustomizationError",
    "congestion", "corruptData", "cpuCyclesLimitExceeded", "dataSetOrModemError", "degradedSignal",
    "dteDceInterfaceError", "enclosureDoorOpen", "equipmentMalfunction", "excessiveVibration", "fileError",
    "fireDetected", "floodDetected", "framingError", "heatingOrVentilationOrCoolingSystemProblem",
    "humidityUnacceptable", "inputOutputDeviceError", "inputDeviceError", "lanError", "leakDetected",
    "localNodeTransmissionError", "lossOfFrame", "lossOfSignal", "materialSupplyExhausted", "multiplexerProblem",
    "outOfMemory", "outputDeviceError", "performanceDegraded", "powerProblem", "pressureUnacceptable",
    "processorProblem", "pumpFailure", "queueSizeExceeded", "receiveFailure", "receiverFailure",
    "remoteNodeTransmissionError", "resourceAtOrNearingCapacity", "responseTimeExcessive",
    "retransmissionRateExcessive", "softwareError", "softwareProgramAbnormallyTerminated", "softwareProgramError",
    "storageCapacityProblem", "temperatureUnacceptable", "thresholdCrossed", "timingProblem", "toxicLeakDetected",
    "transmitFailure", "transmitterFailure", "underlyingResourceUnavailable", "versionMismatch",
    # X.736 security alarms
    "authenticationFailure", "breachOfConfidentiality", "cableTamper", "delayedInformation", "denialOfService",
    "duplicateInformation", "informationMissing", "informationModificationDetected", "informationOutOfSequence",
    "intrusionDetection", "keyExpired", "nonRepudiationFailure", "outOfHoursActivity", "outOfService",
    "proceduralError", "unauthorizedAccessAttempt", "unexpectedInformation", "unspecifiedReason",
    # M.3100 and 3GPP TS 32.111-2 Annex B
    "aIS", "callSetUpFailure", "farEndReceiverFailure", "lossOfPointer", "lossOfMultiFrame",
    "payloadTypeMismatch", "transmissionError", "remoteAlarmInterface", "excessiveBitErrorRate",
    "pathTraceMismatch", "unavailable", "signalLabelMismatch", "modulationFailure", "demodulationFailure",
    "broadcastChannelFailure", "connectionEstablishmentError", "invalidMessageReceived", "routingFailure",
    "backplaneFailure", "dataSetProblem", "equipmentIdentifierDuplication", "externalIFDeviceProblem",
    "lineCardProblem", "nEIdentifierDuplication", "protectionPathFailure", "replaceableUnitMissing",
    "replaceableUnitTypeMismatch", "synchronizationSourceMismatch", "terminalProblem", "trunkCardProblem",
    "replaceableUnitProblem", "realTimeClockFailure", "antennaFailure", "batteryChargingFailure", "diskFailure",
    "frequencyHoppingFailure", "lossOfSynchronisation", "lossOfRedundancy", "powerSupplyFailure",
    "signalQualityEvaluationFailure", "transceiverFailure", "protectionMechanismFailure",
    "protectingResourceFailure", "airCompressorFailure", "airConditioningFailure", "airDryerFailure",
    "batteryDischarging", "batteryFailure", "commercialPowerFailure", "fanFailure", "engineFailure",
    "fireDetectorFailure", "fuseFailure", "generatorFailure", "lowBatteryThreshold", "rectifierFailure",
    "rectifierHighVoltage", "rectifierLowFVoltage", "ventilationsSystemFailure", "explosiveGas", "fire",
    "flood", "highHumidity", "highTemperature", "highWind", "iceBuildUp", "intrusion", "lowFuel", "lowHumidity",
    "lowCablePressure", "lowTemperatue", "lowWater", "smoke", "toxicGas", "coolingSystemFailure",
    "externalEquipmentFailure", "externalPointFailure", "memoryMismatch",
    "lossOfTimeSource", "indeterminate",
})

#: X.733 8.1.2.3; ``cleared`` is what a cleared alarm's severity becomes
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate", "cleared")
RAISING_SEVERITIES = frozenset(SEVERITIES) - {"cleared"}

#: TMF642 alarm states and acknowledgement states
STATES = ("raised", "updated", "cleared")
ACK_STATES = ("unacknowledged", "acknowledged")
