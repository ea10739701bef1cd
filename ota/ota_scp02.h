/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GlobalPlatform SCP02 (GP Card Spec 2.2 Annex E): session keys, cryptograms, C-MAC, C-DECRYPTION, key diversification.
 * Part of the ota/ public face: users include "ota/ota.h".
 */
#pragma once

#include "ota/ota_common.h"
