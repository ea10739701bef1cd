/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UDH building/parsing, concatenation (segmentation and reassembly) and SMS TPDU helpers (TS 23.040 9.2.3.24, TS 31.115 4.2-4.4).
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
