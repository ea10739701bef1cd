/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ota/: the public face of otagw's pure OTA codecs. No I/O, no globals, no
 * logging: every function takes explicit lengths, writes into caller buffers
 * and reports failures as a negative errno plus struct ota_err.
 *
 *   ota_common.h  errors, big-endian helpers
 *   ota_crypto.h  DES/3DES/AES over OpenSSL EVP, CBC-MAC, CMAC, retail MAC, KCV, CRC
 *   ota_apdu.h    ISO 7816-4 short command APDUs
 *   ota_udh.h     user data headers, concatenation, SMS TPDU helpers
 *   ota_push.h    wallet push SMS (spec 5.8.5.3)
 *   ota_scp80.h   TS 102 225 / TS 31.115 command and response packets
 *   ota_rapdu.h   TS 102 226 remote APDU scripts and responses
 *   ota_gp.h      GlobalPlatform APDU builders
 *   ota_scp02.h   GlobalPlatform SCP02 secure channel
 */
#pragma once

#include "ota/ota_common.h"
#include "ota/ota_crypto.h"
#include "ota/ota_apdu.h"
#include "ota/ota_udh.h"
#include "ota/ota_push.h"
#include "ota/ota_scp80.h"
#include "ota/ota_rapdu.h"
#include "ota/ota_gp.h"
#include "ota/ota_scp02.h"
