/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GlobalPlatform Card Specification 2.2 card-content-management APDU builders.
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
