"""Prepares the local DynamoDB-compatible server (moto) for the fleet-store tests: the table
(partition key pk, sort key sk, TTL attribute exp), an IAM user with the README's minimal
policy and an access key, and a role for web identity (IRSA) with the same policy. Prints the
access key as JSON. Run before moto starts enforcing authentication (its
INITIAL_NO_AUTH_ACTION_COUNT is the number of calls made here).

    python aws_setup.py ENDPOINT TABLE
"""
import json
import sys

import boto3

endpoint, table = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="eu-central-1",
          aws_access_key_id="setup", aws_secret_access_key="setup")
ddb = boto3.client("dynamodb", **kw)
iam = boto3.client("iam", **kw)

# The README's minimal policy for the filter (one statement, the table only), plus
# TransactWriteItems: moto authorises that call by its own name, AWS by its items' PutItem /
# UpdateItem.
POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
                   "dynamodb:TransactWriteItems"],
        # moto matches actions, not resources (it checks every call against "*").
        "Resource": "*",
    }],
})

ddb.create_table(                                                          # 1
    TableName=table,
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
               {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                          {"AttributeName": "sk", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST")
ddb.update_time_to_live(                                                   # 2
    TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
iam.create_user(UserName="mcpgate")                                        # 3
iam.put_user_policy(UserName="mcpgate", PolicyName="mcpgate-store",       # 4
                    PolicyDocument=POLICY)
key = iam.create_access_key(UserName="mcpgate")["AccessKey"]              # 5
trust = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.example"},
    "Action": "sts:AssumeRoleWithWebIdentity"}]})
iam.create_role(RoleName="mcpgate-irsa", AssumeRolePolicyDocument=trust)  # 6
iam.put_role_policy(RoleName="mcpgate-irsa", PolicyName="mcpgate-store",  # 7
                    PolicyDocument=POLICY)
print(json.dumps({"access_key_id": key["AccessKeyId"],
                  "secret_access_key": key["SecretAccessKey"],
                  "role_arn": "arn:aws:iam::123456789012:role/mcpgate-irsa"}))
