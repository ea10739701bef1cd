/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCP80 secured packets (ETSI TS 102 225 / 3GPP TS 31.115): SPI/KIc/KID coding, command packets and response packets (PoR).
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
