/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Remote APDU formats of ETSI TS 102 226: compact and expanded command scripts and responses.
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
