#!/usr/bin/env bash
# Does the S3 server honour `If-None-Match: *` on PutObject and on CompleteMultipartUpload?
# Writes one key twice each way, the second time with the condition, and says whether the
# second write was refused (412) or replaced the object. Signed with curl's --aws-sigv4.
#
#   eval "$(.ci/garage-start)"; bench/garage-conditional.sh; garage_stop
#
# Reads RESBAK_TEST_S3_ENDPOINT, RESBAK_TEST_S3_BUCKET, RESBAK_TEST_S3_REGION,
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (as .ci/garage-start exports them).
set -euo pipefail
: "${RESBAK_TEST_S3_ENDPOINT:?}" "${RESBAK_TEST_S3_BUCKET:?}" "${RESBAK_TEST_S3_REGION:?}"
url="$RESBAK_TEST_S3_ENDPOINT/$RESBAK_TEST_S3_BUCKET/conditional-probe-$$"
s3=(curl -s --aws-sigv4 "aws:amz:$RESBAK_TEST_S3_REGION:s3"
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")

verdict() { # second write's HTTP code, object's content afterwards
  if [[ $1 == 412 ]]; then echo "honoured (412, object kept: $2)"; else echo "IGNORED (HTTP $1, object now: $2)"; fi
}

"${s3[@]}" -o /dev/null -X PUT --data-binary first "$url/put"
code=$("${s3[@]}" -o /dev/null -w '%{http_code}' -X PUT -H 'If-None-Match: *' --data-binary second "$url/put")
echo "PutObject with If-None-Match: *: $(verdict "$code" "$("${s3[@]}" "$url/put")")"

"${s3[@]}" -o /dev/null -X PUT --data-binary first "$url/multipart"
id=$("${s3[@]}" -X POST "$url/multipart?uploads=" | sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p')
etag=$("${s3[@]}" -D - -o /dev/null -X PUT --data-binary second "$url/multipart?partNumber=1&uploadId=$id" |
  tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
body="<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$etag</ETag></Part></CompleteMultipartUpload>"
code=$("${s3[@]}" -o /dev/null -w '%{http_code}' -X POST -H 'If-None-Match: *' --data-binary "$body" "$url/multipart?uploadId=$id")
echo "CompleteMultipartUpload with If-None-Match: *: $(verdict "$code" "$("${s3[@]}" "$url/multipart")")"
[[ $code == 200 ]] || "${s3[@]}" -o /dev/null -X DELETE "$url/multipart?uploadId=$id"

"${s3[@]}" -o /dev/null -X DELETE "$url/put"
"${s3[@]}" -o /dev/null -X DELETE "$url/multipart"
