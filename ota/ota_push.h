/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Push SMS layout for the wallet wake-up (spec 5.8.5.3): UDH port header, SEID and push serial.
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
