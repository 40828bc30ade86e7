#!/usr/bin/env python3
"""s3check.py ENDPOINT ACTION BUCKET [KEY [FILE]]

A tiny S3 client (boto3) for smoke-testing a MinIO server. Credentials come from
MINIO_ROOT_USER / MINIO_ROOT_PASSWORD in the environment.

Actions:
  mkbucket BUCKET            create the bucket (ok if it is already ours)
  put BUCKET KEY FILE        upload FILE as KEY
  get BUCKET KEY FILE        download KEY and check it is byte-identical to FILE
  delete BUCKET KEY          delete KEY and check a HEAD of it is then a 404
  rmbucket BUCKET            remove the (empty) bucket
Exits non-zero, with the reason on stderr, on any failure.
"""
import hashlib
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, action, bucket = sys.argv[1:4]
    rest = sys.argv[4:]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ["MINIO_ROOT_USER"],
        aws_secret_access_key=os.environ["MINIO_ROOT_PASSWORD"],
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )
    if action == "mkbucket":
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as e:
            if e.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert bucket in names, f"{bucket} not in {names}"
        print(f"mkbucket {bucket}: ok")
    elif action == "put":
        key, path = rest
        with open(path, "rb") as f:
            data = f.read()
        etag = s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
        print(f"put {bucket}/{key}: {len(data)} bytes, etag {etag}")
    elif action == "get":
        key, path = rest
        with open(path, "rb") as f:
            want = f.read()
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if got != want:
            print(f"get {bucket}/{key}: MISMATCH {len(got)} bytes sha256 {sha256(got)}"
                  f" != {len(want)} bytes sha256 {sha256(want)}", file=sys.stderr)
            return 1
        print(f"get {bucket}/{key}: {len(got)} bytes, sha256 {sha256(got)} matches")
    elif action == "delete":
        (key,) = rest
        s3.delete_object(Bucket=bucket, Key=key)
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey"):
                print(f"delete {bucket}/{key}: ok (now 404)")
                return 0
            raise
        print(f"delete {bucket}/{key}: object still there", file=sys.stderr)
        return 1
    elif action == "rmbucket":
        s3.delete_bucket(Bucket=bucket)
        print(f"rmbucket {bucket}: ok")
    else:
        print(f"unknown action {action}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
